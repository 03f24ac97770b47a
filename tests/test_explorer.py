"""The latent explorer: its JSON API (validation, answers checked against the run) and the
page in a real headless browser (Debian's Chromium through Playwright).

Environment:
- ``ASTROLATENT_NO_BROWSER=1`` skips the browser test (otherwise a missing Chromium fails it);
- ``ASTROLATENT_SCREENSHOTS=DIR`` also writes the browser test's screenshots to DIR;
- ``ASTROLATENT_EXPLORER_RUN=RUN`` runs the browser test on RUN instead of the tiny fixture
  (how the screenshots in docs/img are made from a better trained run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
import typer
import uvicorn
from typer.testing import CliRunner

from astrolatent.cli.explore import listen_socket, register
from astrolatent.data.store import SpectrumStore
from astrolatent.errors import ConfigError, RunError
from astrolatent.explorer import ExplorerData, create_app
from astrolatent.training.encode import decode, load_model
from tests.conftest import train_tiny

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def serving(data: ExplorerData, hosts: list[str] | None = None) -> Iterator[str]:
    """The explorer served by uvicorn in a background thread; yields its URL."""
    sock = listen_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        create_app(data, hosts=hosts),
        log_level="warning",
        ws="none",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(analyzed_run: Path, one_thread) -> ExplorerData:
    return ExplorerData(analyzed_run)


@pytest.fixture(scope="module")
def client(data: ExplorerData) -> Iterator[httpx.Client]:
    """A client of the explorer served by uvicorn (as ``astrolatent explore`` does)."""
    with serving(data) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def latents(analyzed_run: Path) -> pd.DataFrame:
    return pd.read_parquet(analyzed_run / "latents.parquet")


def mu_of(latents: pd.DataFrame) -> np.ndarray:
    cols = sorted((c for c in latents if c.startswith("mu_")), key=lambda c: int(c[3:]))
    return latents[cols].to_numpy(float)


def floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


# ---- answers (fluxes are sent with 5 decimals) ----------------------------------------------------------------------------


def test_meta_describes_the_run(client, analyzed_run, latents):
    meta = client.get("/api/meta").json()
    summary = json.loads((analyzed_run / "analysis" / "summary.json").read_text())
    informative = summary["informative"]
    assert meta["informative"] == sorted(informative["agreed"] or informative["dispersion"]["dims"])
    assert meta["latent_dim"] == summary["n_latent"] == len(meta["dims"])
    assert meta["n_spectra"] == len(latents)
    assert set(meta["labels"]) == {"rv", "depth"}
    assert meta["best_dims"] == {k: v["best_dim"] for k, v in summary["labels"].items()}
    mu = mu_of(latents)
    for d in meta["dims"]:
        j = d["dim"]
        assert d["lo"] == pytest.approx(np.percentile(mu[:, j], 1))
        assert d["median"] == pytest.approx(np.median(mu[:, j]))
        assert d["limits"][0] < d["lo"] <= d["median"] <= d["hi"] < d["limits"][1]
    assert meta["wave_range"] == [5000.0, 5000.0 + 0.5 * 127]


def test_decode_matches_the_model(client, analyzed_run, data):
    model, _ = load_model(analyzed_run)
    z = np.array([d["median"] for d in client.get("/api/meta").json()["dims"]])
    z[data.informative[0]] += 1.0
    answer = client.post("/api/decode", json={"z": z.tolist()}).json()
    expected = decode(model, z)[0]
    assert np.allclose(floats(answer["flux"]), expected, atol=1e-5)
    assert np.allclose(answer["wave"], data.wave)
    window = client.post("/api/decode", json={"z": z.tolist(), "window": [5010, 5020]}).json()
    assert window["wave"] == [w for w in data.wave.tolist() if 5010 <= w <= 5020]
    inside = (data.wave >= 5010) & (data.wave <= 5020)
    assert np.allclose(floats(window["flux"]), expected[inside], atol=1e-5)


def test_reduced_spectra_keep_each_bins_extremes(client, data):
    z = [d["median"] for d in client.get("/api/meta").json()["dims"]]
    full = floats(client.post("/api/decode", json={"z": z}).json()["flux"])
    small = client.post("/api/decode", json={"z": z, "max_points": 32}).json()
    flux = floats(small["flux"])
    assert len(flux) == len(small["wave"]) == 32
    # 16 bins of 8 px: each bin's min and max survive, so the lines' depth does too
    bins = full.reshape(16, 8)
    assert np.allclose(np.sort(flux.reshape(16, 2), axis=1), np.c_[bins.min(1), bins.max(1)])
    assert np.allclose(small["wave"][::2], data.wave.reshape(16, 8).mean(1))


def test_neighbors_of_a_spectrums_latent_start_with_itself(client, data, latents, tiny_store):
    mu = mu_of(latents)
    i = 17
    answer = client.post("/api/neighbors", json={"z": mu[i].tolist(), "k": 4}).json()
    found = answer["neighbors"]
    assert len(found) == 4
    assert found[0]["id"] == latents["id"].iloc[i]
    assert found[0]["distance"] == pytest.approx(0, abs=1e-9)
    distances = [n["distance"] for n in found]
    assert distances == sorted(distances)
    dims = data.search_dims
    for n in found:
        j = int(np.flatnonzero(latents["id"] == n["id"])[0])
        assert n["distance"] == pytest.approx(np.linalg.norm(mu[j, dims] - mu[i, dims]))
        assert n["labels"]["rv"] == pytest.approx(latents["rv"].iloc[j])
        assert n["z"] == pytest.approx(mu[j].tolist())
        flux, valid = SpectrumStore(tiny_store).read([int(latents["row"].iloc[j])])
        assert np.allclose(floats(n["flux"])[valid[0]], flux[0][valid[0]], atol=1e-5)
        assert np.isnan(floats(n["flux"])[~valid[0]]).all()


def test_spectrum_by_id(client, latents, data):
    i = 5
    spectrum_id = latents["id"].iloc[i]
    answer = client.get(f"/api/spectrum/{spectrum_id}").json()
    assert answer["id"] == spectrum_id
    assert answer["z"] == pytest.approx(mu_of(latents)[i].tolist())
    assert answer["labels"]["depth"] == pytest.approx(latents["depth"].iloc[i])
    recon = decode(data.model, mu_of(latents)[i])[0]
    assert np.allclose(floats(answer["decoded"]), recon, atol=1e-5)
    window = client.get(f"/api/spectrum/{spectrum_id}", params={"window": "5030,5040"}).json()
    assert min(window["wave"]) >= 5030 and max(window["wave"]) <= 5040


def test_scatter_pairs_a_latent_with_a_label(client, latents):
    answer = client.get("/api/scatter", params={"label": "rv", "dim": 1}).json()
    table = latents.set_index("id")
    assert len(answer["ids"]) == len(latents)
    assert answer["x"] == pytest.approx(table.loc[answer["ids"], "mu_1"].tolist())
    assert answer["y"] == pytest.approx(table.loc[answer["ids"], "rv"].tolist())


# ---- validation -------------------------------------------------------------------------

BAD_REQUESTS = [
    ("post", "/api/decode", {"z": [0.0]}, 400, "latent dimensions"),
    ("post", "/api/decode", {"z": "zero"}, 422, "z"),
    ("post", "/api/decode", {"z": ["a", 0]}, 422, "z.0"),
    ("post", "/api/decode", {}, 422, "z: Field required"),
    ("post", "/api/decode", "NaN", 422, "z"),
    ("post", "/api/decode", {"z": None, "extra": 1}, 422, "extra"),
    ("post", "/api/decode", {"z": "BIG"}, 400, "outside the allowed range"),
    ("post", "/api/decode", {"z": "OK", "window": [5100, 5000]}, 400, "low < high"),
    ("post", "/api/decode", {"z": "OK", "window": [9000, 9100]}, 400, "fewer than 2 pixels"),
    ("post", "/api/decode", {"z": "OK", "window": [1]}, 422, "window"),
    ("post", "/api/decode", {"z": "OK", "max_points": 1}, 422, "max_points"),
    ("post", "/api/neighbors", {"z": "OK", "k": 0}, 422, "k"),
    ("post", "/api/neighbors", {"z": "OK", "k": 1000}, 400, "k=1000"),
    ("get", "/api/spectrum/NO-SUCH-ID", None, 404, "'NO-SUCH-ID'"),
    ("get", "/api/spectrum/ADP.x?window=a,b", None, 404, "no spectrum"),
    ("get", "/api/scatter?label=teff&dim=0", None, 400, "unknown label 'teff'"),
    ("get", "/api/scatter?label=rv&dim=99", None, 400, "dim=99"),
    ("get", "/api/scatter?label=rv&dim=x", None, 422, "dim"),
    ("get", "/api/scatter?label=rv", None, 422, "dim: Field required"),
    ("get", "/static/../pyproject.toml", None, 404, "Not Found"),
    ("get", "/static/%2e%2e/%2e%2e/config.yaml", None, 404, "Not Found"),
    ("get", "/config.yaml", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "url", "body", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx(client, data, method, url, body, status, message):
    ok = [float(v) for v in data.median]
    if isinstance(body, dict) and body.get("z") == "OK":
        body = {**body, "z": ok}
    elif isinstance(body, dict) and body.get("z") == "BIG":
        body = {"z": [*ok[:-1], 1e9]}
    elif isinstance(body, dict) and body.get("z") is None and "extra" in body:
        body = {"z": ok, "extra": 1}
    if body == "NaN":  # not valid JSON, but Python's parser reads it: must still be refused
        response = client.post(
            url,
            content=json.dumps({"z": [float("nan")] * len(ok)}),
            headers={"Content-Type": "application/json"},
        )
    elif method == "post":
        response = client.post(url, json=body)
    else:
        response = client.get(url)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert message in detail


def test_window_that_is_not_two_numbers_is_refused(client, latents):
    spectrum_id = latents["id"].iloc[0]
    response = client.get(f"/api/spectrum/{spectrum_id}", params={"window": "a,b"})
    assert response.status_code == 400
    assert response.json()["detail"] == "window='a,b': expected two numbers 'low,high'"


def test_malformed_json_is_refused(client):
    response = client.post(
        "/api/decode", content=b'{"z": [0,', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_unexpected_errors_do_not_leak_a_traceback(client, data, monkeypatch):
    def broken(z):
        raise RuntimeError("secret /path/in/traceback")

    monkeypatch.setattr(data, "decode", broken)
    response = client.post("/api/decode", json={"z": [float(v) for v in data.median]})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error (RuntimeError); see the server log"}
    assert client.get("/api/meta").status_code == 200  # the connection survives


def test_the_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/explorer.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/explorer.js")
    assert script.status_code == 200 and "/api/decode" in script.text
    assert client.get("/static/explorer.css").status_code == 200


# ---- command line -----------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    return app


def test_explore_needs_an_encoded_run(cli, analyzed_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(analyzed_run / "model.pt", run / "model.pt")
    result = CliRunner().invoke(cli, ["explore", str(run)])
    assert isinstance(result.exception, RunError)
    assert str(result.exception) == (
        f"{run / 'latents.parquet'}: not found; encode the run first with `astrolatent encode {run}`"
    )
    result = CliRunner().invoke(cli, ["explore", str(tmp_path / "nothing")])
    assert str(result.exception) == f"{tmp_path / 'nothing'}: no such run directory"


def test_without_analysis_the_informative_dims_are_counted_as_analyze_does(
    analyzed_run, data, tmp_path
):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.pt", "latents.parquet"):
        shutil.copy(analyzed_run / name, run / name)
    bare = ExplorerData(run)
    assert bare.informative == data.informative
    assert bare.best_dims == {}
    assert bare.meta()["labels"] == data.meta()["labels"]


def test_a_busy_port_is_a_clear_error():
    sock = listen_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen_socket("127.0.0.1", port)
    finally:
        sock.close()


def test_explore_command_serves_the_run(analyzed_run):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "astrolatent", "explore", str(analyzed_run), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert "http://127.0.0.1:" in line, line
            url = line.split(" at ", 1)[1].split()[0]
            meta = httpx.get(url + "api/meta", timeout=10).json()
            assert meta["n_spectra"] == 96
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err


# ---- browser ----------------------------------------------------------------------------


@pytest.fixture
def browser_run(request) -> Path:
    chosen = os.environ.get("ASTROLATENT_EXPLORER_RUN")
    return Path(chosen) if chosen else request.getfixturevalue("analyzed_run")


def _screenshot(page, name: str, tmp_path: Path) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    target = os.environ.get("ASTROLATENT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(target) / name)


# predicates are functions (strings would be eval'd, which the page's CSP forbids)
POINTS = "() => document.querySelector('#decoded-line polyline')?.getAttribute('points')"
CHANGED = "(before) => document.querySelector('#decoded-line polyline')?.getAttribute('points') !== before"


def test_explorer_in_a_browser(browser_run, one_thread, tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("ASTROLATENT_NO_BROWSER") == "1":
            pytest.skip("ASTROLATENT_NO_BROWSER=1")
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium "
            "chromium-driver; `make test` does it) or set ASTROLATENT_NO_BROWSER=1"
        )
    from playwright.sync_api import sync_playwright

    data = ExplorerData(browser_run)
    problems: list[str] = []
    with serving(data) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.goto(url)
            page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            k = 5
            page.wait_for_function("(k) => document.body.dataset.neighbors === String(k)", arg=k)
            rows = page.locator("#neighbors tbody tr")
            assert rows.count() == k
            ids = [rows.nth(i).get_attribute("data-id") for i in range(k)]
            assert set(ids) <= set(data.ids)
            assert page.locator("#spectrum-plot g.neighbor").count() == k

            # a slider moves the decoded spectrum
            dim = data.informative[0] if data.informative else 0
            before = page.evaluate(POINTS)
            page.focus(f"#slider-{dim}")
            page.keyboard.press("End")
            page.wait_for_function(CHANGED, arg=before, timeout=10_000)
            value = page.locator(f"#value-{dim}")
            assert float(value.get_attribute("data-value")) == pytest.approx(data.hi[dim])
            assert page.locator("#error").is_hidden()
            # ... and the neighbours follow: those of the new position, as the API finds them
            z = data.median.copy()
            z[dim] = data.hi[dim]
            expected = [data.ids[i] for i, _ in data.neighbors(z, k)]
            page.wait_for_function(
                """(ids) => JSON.stringify([...document.querySelectorAll('#neighbors tbody tr')]
                    .map((row) => row.dataset.id)) === JSON.stringify(ids)""",
                arg=expected,
            )
            _screenshot(page, "explorer.png", tmp_path)

            # a scatter point loads that spectrum's latent position; it is its own nearest neighbour
            point = page.locator("#scatter-points circle").last  # drawn last: on top
            chosen = point.get_attribute("data-id")
            point.click()
            page.wait_for_function(
                "(id) => document.querySelector('#neighbors tbody tr')?.dataset.id === id",
                arg=chosen,
            )
            z = data.mu[data.row_of(chosen)]
            assert float(value.get_attribute("data-value")) == pytest.approx(z[dim])

            # zoom to a window
            lo, hi = data.wave[len(data.wave) // 4], data.wave[len(data.wave) // 2]
            page.fill("#wmin", f"{lo}")
            page.fill("#wmax", f"{hi}")
            before = page.evaluate(POINTS)
            page.click("#zoom")
            page.wait_for_function(CHANGED, arg=before)
            ticks = [float(t) for t in page.locator("#spectrum-plot .xtick").all_text_contents()]
            assert len(ticks) >= 2 and all(lo <= t <= hi for t in ticks)
            _screenshot(page, "explorer-zoom.png", tmp_path)
        finally:
            browser.close()
    assert not problems, problems
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_only_the_served_host_is_answered_and_head_works(data):
    from astrolatent.cli.explore import served_hosts

    with serving(data, hosts=served_hosts("127.0.0.1")) as url, httpx.Client(base_url=url) as c:
        assert c.get("/").status_code == 200 and c.head("/").status_code == 200
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert c.get("/api/meta", headers={"Host": f"localhost:{port}"}).status_code == 200
        # a DNS-rebinding page reaches the same socket under its own name
        assert c.get("/api/meta", headers={"Host": f"evil.example:{port}"}).status_code == 400
    assert served_hosts("0.0.0.0") == ["*"] and served_hosts("10.0.0.2") == ["10.0.0.2"]


# ---- a run with known labels: tied and free latents apart -----------------------------------


@pytest.fixture(scope="module")
def known_run(tiny_store, tmp_path_factory, one_thread) -> Path:
    """A run whose first latent is tied to the known label rv (trained briefly, encoded)."""
    run = tmp_path_factory.mktemp("known") / "run"
    sections = {"architecture": {"latent_dim": 4}, "known_labels": {"names": ["rv"]}}
    return train_tiny(tiny_store, run, max_steps=10, **sections)


def test_meta_gives_every_latent_its_role(known_run):
    data = ExplorerData(known_run)
    _, config = load_model(known_run)
    meta = data.meta()
    assert meta["tied"] == [0]
    tied = meta["dims"][0]
    assert (tied["role"], tied["label"]) == ("tied", "rv")
    assert tied["label_mean"] == pytest.approx(config.known_labels.mean["rv"])
    assert tied["label_std"] == pytest.approx(config.known_labels.std["rv"])
    assert [d["role"] for d in meta["dims"][1:]] == ["free"] * 3
    assert all(d["label"] is None for d in meta["dims"][1:])


def test_tied_and_free_sliders_apart_in_a_browser(known_run, one_thread):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (test_explorer_in_a_browser says how to install it)")
    from playwright.sync_api import sync_playwright

    data = ExplorerData(known_run)
    tied = data.meta()["dims"][0]
    problems: list[str] = []
    with serving(data) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.goto(url)
            page.wait_for_selector("body[data-state=ready]", timeout=15_000)
            group = page.locator("#sliders-tied")
            assert group.locator("h3").inner_text().lower().startswith("known labels")
            assert group.locator("label").all_inner_texts() == ["rv"]
            assert page.locator("#sliders-free #slider-0").count() == 0
            # the tied slider reads in the label's units: rv = mean + std * z
            page.focus("#slider-0")
            page.keyboard.press("End")
            value = page.locator("#value-0")
            page.wait_for_function(
                "(hi) => Number(document.querySelector('#value-0').dataset.value) === hi",
                arg=float(data.hi[0]),
            )
            z = float(value.get_attribute("data-value"))
            shown = float(value.inner_text())
            expected = tied["label_mean"] + tied["label_std"] * z
            assert shown == pytest.approx(expected, rel=1e-3, abs=1e-3 * abs(tied["label_std"]))
            # the informative free latents start in their own group; any other free latent
            # added lands there too
            free = [d for d in data.informative if d != 0]
            ids = page.locator("#sliders-free input").evaluate_all("(xs) => xs.map((x) => x.id)")
            assert ids == [f"slider-{d}" for d in free]
            others = [d for d in range(1, data.latent_dim) if d not in free]
            if others:
                page.select_option("#extra-dim", str(others[0]))
                page.click("#add-dim")
                assert page.locator(f"#sliders-free #slider-{others[0]}").count() == 1
        finally:
            browser.close()
    assert not problems, problems
