"""Causal analysis: local tests in a latent space and global discovery, against planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from astrolatent.analysis.causal import (
    CausalGraph,
    DiscoveryConfig,
    discover,
    local_tests,
    skeleton_scores,
)
from astrolatent.analysis.causal.discover import marks_from_causallearn, marks_from_weights
from astrolatent.analysis.causal.local import quadratic_residuals
from astrolatent.cli import app
from astrolatent.cli import run as cli_run
from astrolatent.errors import ConfigError, InputFileError
from astrolatent.galaxies.config import EstimatorConfig, GalaxySimulationConfig
from astrolatent.galaxies.simulate import write_galaxies
from astrolatent.galaxies.train import fit_estimator
from astrolatent.outputs.marks import claim
from astrolatent.simulate.dags import DAGSimulationConfig, simulate_dag

runner = CliRunner()


def _cli_json(*args: str) -> dict:
    """What ``astrolatent ARGS --json`` prints (the command must succeed)."""
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


# ---------------------------------------------------------------------------------------
# local tests
# ---------------------------------------------------------------------------------------
def test_quadratic_residuals_remove_an_exact_quadratic_and_keep_the_rest():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 50, 1))
    noise = rng.normal(size=(4, 50))
    y = 2 - 3 * x[..., 0] + 0.5 * x[..., 0] ** 2 + noise
    resid = quadratic_residuals(y, x)
    for row in range(4):  # the least-squares residuals of each neighbourhood
        design = np.c_[np.ones(50), x[row, :, 0], x[row, :, 0] ** 2]
        coef = np.linalg.lstsq(design, y[row], rcond=None)[0]
        assert np.allclose(resid[row], y[row] - design @ coef, atol=1e-6)
    assert np.allclose(quadratic_residuals(1 + x[..., 0] ** 2, x), 0, atol=1e-5)
    flat = quadratic_residuals(y, np.ones_like(x))  # constant regressor: mean removed
    assert np.allclose(flat, y - y.mean(axis=1, keepdims=True))


def _latent_world(n: int = 3000, seed: int = 0) -> dict[str, np.ndarray]:
    """S (2 dims) drives Y; ``planted`` reaches Y outside S; ``control`` reaches nothing;
    ``proxy`` only correlates with Y through ``confounder`` (explained by conditioning)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 2))
    planted, control, confounder = rng.normal(size=(3, n))
    proxy = confounder + 0.3 * rng.normal(size=n)
    y = s[:, 0] + 0.5 * s[:, 1] ** 2 + 0.4 * planted + 0.4 * confounder + 0.3 * rng.normal(size=n)
    return {
        "s": s,
        "y": y,
        "planted": planted,
        "control": control,
        "proxy": proxy,
        "confounder": confounder,
    }


def test_local_tests_find_the_planted_effect_and_not_the_control():
    w = _latent_world()
    evaluate = np.zeros(len(w["y"]), bool)
    evaluate[:300] = True
    common = {"reference": ~evaluate, "evaluate": evaluate, "n_neighbors": 60, "n_permutations": 99}
    found = local_tests(w["s"], w["y"], w["planted"], **common)
    null = local_tests(w["s"], w["y"], w["control"], **common)
    s_found, s_null = found.summary["given_s"], null.summary["given_s"]
    assert s_found["mean_r"] > 0.4 and s_found["fraction_significant"] > 0.9
    assert s_found["mean_pe"] > 0.15 and s_found["binomial_p"] < 1e-10
    assert abs(s_null["mean_r"]) < 0.05 and s_null["fraction_significant"] < 0.12
    assert s_null["fraction_significant_bh"] < 0.03 and s_null["binomial_p"] > 1e-3
    assert abs(s_found["mean_r_null"]) < 0.05  # the permutation null is centred
    assert len(found.objects) == 300 and {"r", "p", "q", "pe", "r_null"} <= set(found.objects)


def test_conditioning_explains_a_confounded_dependence():
    w = _latent_world(seed=1)
    result = local_tests(
        w["s"],
        w["y"],
        w["proxy"],
        condition=w["confounder"],
        n_neighbors=60,
        n_permutations=99,
        evaluate=np.arange(len(w["y"])) < 300,
    )
    given_s = result.summary["given_s"]
    given_both = result.summary["given_s_and_condition"]
    assert given_s["fraction_significant"] > 0.5
    assert given_both["fraction_significant"] < 0.12 and abs(given_both["mean_r"]) < 0.05
    assert {"cond_r", "cond_p", "cond_q", "cond_pe"} <= set(result.objects)


def test_an_object_is_never_its_own_neighbour():
    # five far-apart objects with an extreme (y, query) = (100, 100): were an object its
    # own neighbour, that point alone would make r close to 1
    rng = np.random.default_rng(3)
    n = 400
    s = rng.normal(size=(n, 1))
    s[:5, 0] = [-1.5, -0.75, 0.0, 0.75, 1.5]
    y, query = rng.normal(size=(2, n))
    y[:5] = query[:5] = 100.0
    result = local_tests(s, y, query, evaluate=np.arange(n) < 5, n_neighbors=20, n_permutations=20)
    assert result.settings["n_reference"] == n
    assert np.abs(result.objects["r"]).max() < 0.7


def test_discovery_names_linearly_dependent_variables():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    data = np.column_stack([a, b, 2 * a - b, rng.normal(size=200)])
    with pytest.raises(ConfigError, match=r"variables \['a', 'b', 'c'\] are linearly dependent"):
        discover(data, ["a", "b", "c", "d"])


def test_local_tests_reject_impossible_options():
    w = _latent_world(n=100)
    with pytest.raises(ConfigError, match="n_neighbors=200"):
        local_tests(w["s"], w["y"], w["planted"], n_neighbors=200)
    with pytest.raises(ConfigError, match="alpha=2"):
        local_tests(w["s"], w["y"], w["planted"], alpha=2)
    with pytest.raises(ConfigError, match=r"n_permutations=19 can never give p < alpha=0\.05"):
        local_tests(w["s"], w["y"], w["planted"], n_permutations=19)
    y = w["y"].copy()
    y[3] = np.nan
    with pytest.raises(ConfigError, match="y has 1 non-finite values"):
        local_tests(w["s"], y, w["planted"])
    with pytest.raises(ConfigError, match="query has 99 rows but latents have 100"):
        local_tests(w["s"], w["y"], w["planted"][:99])
    with pytest.raises(ConfigError, match="evaluate must be a boolean mask"):
        local_tests(w["s"], w["y"], w["planted"], evaluate=np.arange(10))


# ---------------------------------------------------------------------------------------
# global discovery
# ---------------------------------------------------------------------------------------
def test_marks_and_edge_types_follow_causallearn_conventions():
    # causal-learn: graph[j, i] = 1 and graph[i, j] = -1 means i --> j
    graph = np.array(
        [
            [0, -1, 2, 1, 0],  # graph[a, b]: the mark at a of the edge a-b
            [1, 0, 0, 0, -1],
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [0, -1, 0, 0, 0],
        ]
    )
    marks = marks_from_causallearn(graph)
    result = CausalGraph(["a", "b", "c", "d", "e"], marks, "test")
    types = {(e["from"], e["to"]): e["type"] for e in result.edges()}
    assert types == {("a", "b"): "-->", ("a", "c"): "o->", ("a", "d"): "<->", ("b", "e"): "---"}
    adj = result.adjacency
    assert adj[0, 1] == 1 and adj[1, 0] == 0  # a --> b
    assert adj[0, 2] == 1 and adj[2, 0] == 0  # a o-> c
    assert adj[0, 3] == adj[3, 0] == 1 and adj[1, 4] == adj[4, 1] == 1
    payload = result.to_dict()
    assert payload["nodes"] == ["a", "b", "c", "d", "e"] and payload["method"] == "test"
    assert payload["marks"][0][1] == "arrow" and payload["marks"][1][0] == "tail"
    json.dumps(payload)
    dag = marks_from_weights(np.array([[0, 0.5], [0, 0]]))
    assert CausalGraph(["x", "y"], dag, "w").edges() == [
        {"from": "x", "to": "y", "type": "-->", "stability": None}
    ]


def test_skeleton_scores_count_edges_either_way():
    truth = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], bool)
    est = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0]], bool)  # 1-0 right, 0-2 wrong
    s = skeleton_scores(est, truth)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and s["f1"] == pytest.approx(0.5)


def test_pc_recovers_a_planted_linear_gaussian_dag_with_stable_edges():
    dag = simulate_dag(DAGSimulationConfig(n=3000, n_nodes=6, n_edges=7, random_state=2))
    graph = discover(dag.data, dag.nodes, DiscoveryConfig(method="pc", n_bootstrap=5))
    assert skeleton_scores(graph.skeleton, dag.adjacency)["f1"] >= 0.9
    true_edges = [
        e
        for e in graph.edges()
        if dag.adjacency[dag.nodes.index(e["from"]), dag.nodes.index(e["to"])]
        or dag.adjacency[dag.nodes.index(e["to"]), dag.nodes.index(e["from"])]
    ]
    assert np.mean([e["stability"] for e in true_edges]) > 0.8
    assert graph.skeleton_stability.shape == (6, 6)
    assert {e["type"] for e in graph.edges()} <= {"-->", "---"}


@pytest.mark.parametrize("method", ["fci", "ges"])
def test_other_algorithms_return_the_same_result_type(method: str):
    dag = simulate_dag(DAGSimulationConfig(n=2000, n_nodes=5, n_edges=5, random_state=4))
    graph = discover(dag.data, dag.nodes, DiscoveryConfig(method=method, n_bootstrap=2))
    assert skeleton_scores(graph.skeleton, dag.adjacency)["f1"] >= 0.8
    assert {e["type"] for e in graph.edges()} <= {"-->", "---", "<->", "o->", "o-o"}
    assert all(0 <= e["stability"] <= 1 for e in graph.edges())


def test_lingam_orients_a_non_gaussian_dag():
    dag = simulate_dag(
        DAGSimulationConfig(n=3000, n_nodes=5, n_edges=5, noise="laplace", random_state=1)
    )
    graph = discover(dag.data, dag.nodes, DiscoveryConfig(method="lingam", n_bootstrap=0))
    assert graph.edge_stability is None
    directed = {(e["from"], e["to"]) for e in graph.edges()}
    rows, cols = np.nonzero(dag.adjacency)
    truth = {(dag.nodes[i], dag.nodes[j]) for i, j in zip(rows, cols, strict=True)}
    assert len(directed & truth) >= 4 and all(e["type"] == "-->" for e in graph.edges())


def test_kernel_test_finds_a_non_monotonic_edge_that_fisher_z_misses():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x**2 + 0.3 * rng.normal(size=200)
    z = rng.normal(size=200)
    data = np.c_[x, y, z]
    linear = discover(data, ["x", "y", "z"], DiscoveryConfig(n_bootstrap=0))
    kernel = discover(data, ["x", "y", "z"], DiscoveryConfig(test="kci", n_bootstrap=0))
    assert not linear.skeleton[0, 1]
    assert kernel.skeleton[0, 1] and kernel.skeleton.sum() == 2
    assert kernel.settings["test"] == "kci"


def test_discovery_rejects_bad_input():
    with pytest.raises(ConfigError, match="applies to pc and fci only"):
        DiscoveryConfig(method="ges", test="kci")
    with pytest.raises(ConfigError, match="NaN"):
        discover(np.array([[np.nan, 1.0]] * 20), ["a", "b"])
    with pytest.raises(ConfigError, match="constant"):
        discover(np.c_[np.ones(20), np.arange(20.0)], ["a", "b"])


# ---------------------------------------------------------------------------------------
# command line, on a planted DAG table and on a trained galaxy run
# ---------------------------------------------------------------------------------------
def test_causal_commands_on_a_spectrum_run_say_so_in_one_line(tmp_path: Path, capsys):
    run = tmp_path / "run"
    claim(run, "run", ["config.yaml", "latents.parquet"])
    (run / "config.yaml").write_text("store: s\n")
    (run / "latents.parquet").write_bytes(b"")
    for args in (["causal", str(run), "--query", "teff"], ["discover", str(run)]):
        assert cli_run(args) != 0
        assert capsys.readouterr().err.strip().splitlines() == [
            f"error: {run}: a spectrum run, not a galaxy run: the causal commands read a "
            "galaxy run (`astrolatent galaxy train`)"
        ]


def test_discover_cli_on_a_planted_table(tmp_path: Path):
    out = tmp_path / "dag"
    res = runner.invoke(
        app,
        ["simulate", "dag", str(out), "--n", "2000", "--nodes", "6", "--edges", "6", "--seed", "3"],
    )
    assert res.exit_code == 0, res.output
    payload = _cli_json(
        "discover",
        str(out / "table.parquet"),
        "--vars",
        "x0,x1,x2,x3,x4,x5",
        "--method",
        "pc",
        "--bootstrap",
        "3",
        "--truth",
        str(out / "dag.json"),
        "--out",
        str(tmp_path / "found"),
    )
    assert payload["nodes"] == [f"x{i}" for i in range(6)]
    assert np.array(payload["adjacency"]).shape == (6, 6)
    assert payload["skeleton"]["f1"] >= 0.9
    for edge in payload["edges"]:
        assert set(edge) == {"from", "to", "type", "stability"}
        assert edge["type"] in {"-->", "---", "<->", "o->", "o-o"}
    assert (tmp_path / "found" / "discovery.json").is_file()
    assert (tmp_path / "found" / "graph.png").stat().st_size > 1000
    res = runner.invoke(app, ["discover", str(out / "table.parquet"), "--vars", "x0,nope"])
    assert res.exit_code != 0 and isinstance(res.exception, InputFileError)
    assert "nope" in str(res.exception)
    subset = ["--vars", "x0,x1", "--truth", str(out / "dag.json")]
    res = runner.invoke(app, ["discover", str(out / "table.parquet"), *subset])
    assert isinstance(res.exception, InputFileError) and "all of its nodes" in str(res.exception)
    res = runner.invoke(app, ["discover", str(tmp_path), "--vars", "x0,x1"])
    assert isinstance(res.exception, InputFileError) and "not a galaxy run" in str(res.exception)


@pytest.fixture(scope="module")
def galaxy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("causal_run")
    write_galaxies(root, GalaxySimulationConfig(n=800, random_state=7), images=False)
    config = EstimatorConfig.from_dict(
        {
            "data": {
                "table": str(root / "catalog.parquet"),
                "target": "logmass",
                "inputs": ["optical", "z", "ebv"],
            },
            "trainer": {"max_epochs": 2, "num_threads": 1},
        }
    )
    fit_estimator(config, root / "run")
    return root / "run"


def test_causal_cli_on_a_galaxy_run(galaxy_run: Path):
    payload = _cli_json(
        "causal",
        str(galaxy_run),
        "--query",
        "inclination",
        "--condition",
        "z",
        "--neighbors",
        "30",
        "--permutations",
        "49",
    )
    folder = galaxy_run / "causal" / "local_inclination_given_z"
    assert payload["out"] == str(folder)
    assert set(payload["tests"]) == {"given_s", "given_s_and_condition"}
    assert payload["target"] == "logmass" and payload["n_evaluated"] == 120
    objects = pd.read_parquet(folder / "local.parquet")
    assert len(objects) == 120 and {"id", "y", "query", "r", "cond_r"} <= set(objects)
    for name in ("local.json", "r_hist.png", "r_map.png"):
        assert (folder / name).is_file()
    res = runner.invoke(app, ["causal", str(galaxy_run), "--query", "logmass"])
    assert res.exit_code != 0 and "target" in str(res.exception)
    res = runner.invoke(app, ["causal", str(galaxy_run), "--query", "nope"])
    assert isinstance(res.exception, InputFileError) and "nope" in str(res.exception)


def test_discover_cli_on_a_galaxy_run(galaxy_run: Path):
    payload = _cli_json(
        "discover",
        str(galaxy_run),
        "--vars",
        "z,inclination",
        "--latent-dims",
        "0,1,2",
        "--bootstrap",
        "2",
    )
    assert payload["nodes"] == ["s_0", "s_1", "s_2", "logmass", "z", "inclination"]
    assert payload["groups"]["logmass"] == "target" and payload["groups"]["s_1"] == "latent"
    folder = galaxy_run / "causal" / "discovery_pc"
    assert (folder / "graph.png").is_file()
    assert json.loads((folder / "discovery.json").read_text())["nodes"] == payload["nodes"]
