"""Hostile input: every command and option, taken from the Typer app itself (so a new command
is covered the day it is added), run with nonsense values and bad files must end with one
``error:`` line, a documented exit code and no traceback, and leave the user's files alone.

The default run sweeps every option of every command with a few nonsense values while the
required arguments point at bad files (in-process, fast); ``-m slow`` runs the exhaustive
variant (every value for every option). Property-based tests (Hypothesis) cover the label
tables and the readers.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrolatent.cli import app, run
from astrolatent.errors import InputFileError, LabelError

#: exit codes a failing command may give (README, "Exit codes"); 1 (an error that is not
#: astrolatent's own) is not among them: each such error must be translated where it occurs
FAILURE_CODES = {2, 3, 4, 5, 6, 7, 8}

INT_VALUES = ["abc", "-1", "0", "99999999999999999999", "1e3"]
FLOAT_VALUES = ["nan", "-inf", "-1", "abc", "1e400"]
TEXT_VALUES = ["", "nonsense", "1,2,,x", "-" * 3, "é\u202e" * 50]


def _commands() -> list[tuple[tuple[str, ...], object]]:
    """Every leaf command of the app as (path, click command)."""
    out = []

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
        else:
            out.append((path, command))

    walk(typer.main.get_command(app), ())
    return out


COMMANDS = _commands()


def _kind(param) -> str:
    """path, int, float, bool (a flag) or text: how to make nonsense for ``param``."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return "bool"
    bare = str(param.bare_type()) if hasattr(param, "bare_type") else str(param.type)
    for kind in ("Path", "int", "float"):
        if kind in bare:
            return kind.lower()
    return "text"


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    return make_bad_files(tmp_path / "hostile")


def make_bad_files(root: Path) -> dict[str, Path]:
    """Hostile files, and the user's folder and file that nothing may change."""
    user_dir = root / "mine"
    user_dir.mkdir(parents=True)
    (user_dir / "thesis.txt").write_text("years of work\n")
    (root / "notes.txt").write_text("my notes\n")
    (root / "empty.fits").write_bytes(b"")
    rng = np.random.default_rng(0)
    (root / "junk.fits").write_bytes(b"SIMPLE  =                    T" + rng.bytes(3000))
    (root / "binary.yaml").write_bytes(rng.bytes(500))
    (root / "labels.csv").write_text("id,teff\n,5000\n0001,abc\n")
    return {
        "user_dir": user_dir,
        "user_file": root / "notes.txt",
        "empty": root / "empty.fits",
        "junk": root / "junk.fits",
        "binary": root / "binary.yaml",
        "csv": root / "labels.csv",
        "missing": root / "nowhere" / "x.fits",
    }


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _base(command, files: dict[str, Path]) -> dict[str, list[str]]:
    """Arguments that make ``command`` fail early: required paths point at the user's own
    folder (never a fresh path, where a command could run for real), other required values
    are nonsense."""
    args: dict[str, list[str]] = {}
    for p in command.params:
        if not p.required:
            continue
        kind = _kind(p)
        value = (
            str(files["user_dir"])
            if kind == "path"
            else {"int": "1", "float": "1"}.get(kind, "nonsense")
        )
        args[p.name] = [value] if p.param_type_name == "argument" else [p.opts[0], value]
    return args


def _values(param, files: dict[str, Path], exhaustive: bool) -> list[str | None]:
    kind = _kind(param)
    if kind == "bool":
        return [None]
    if kind == "path":
        names = ["user_dir", "user_file", "junk", "binary", "empty", "csv"]
        if not param.required:
            names.append("missing")
        values = [str(files[n]) for n in names]
    else:
        values = {"int": INT_VALUES, "float": FLOAT_VALUES}.get(kind, TEXT_VALUES)
    return values if exhaustive else values[:3]


def _cases(files: dict[str, Path], exhaustive: bool):
    for path, command in COMMANDS:
        base = _base(command, files)
        yield path, [a for v in base.values() for a in v]
        for p in command.params:
            for value in _values(p, files, exhaustive):
                args = dict(base)
                if p.param_type_name == "argument":
                    args[p.name] = [value]
                else:
                    args[p.name] = [p.opts[0]] if value is None else [p.opts[0], value]
                ordered = [a for v in args.values() for a in v]
                yield path, ordered


def _check(path, args, capsys, files) -> str | None:
    """Run one case; return a description of what went wrong, or None."""
    before = _snapshot(files["user_dir"].parent)
    code = run([*path, *args])
    out, err = capsys.readouterr()
    problems = []
    if "Traceback" in out + err:
        problems.append("traceback")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code != 0:
        if code not in FAILURE_CODES:
            problems.append(f"exit {code}")
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines")
    lost = {k for k, v in before.items() if _snapshot(files["user_dir"].parent).get(k) != v}
    if lost:
        problems.append(f"changed or deleted {sorted(lost)}")
    if problems:
        return f"astrolatent {' '.join(path)} {' '.join(args)}: {', '.join(problems)}: {err.strip()[:300]}"
    return None


def test_the_sweep_covers_every_command_and_option() -> None:
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"ingest", "train", "encode", "analyze", "report", "explore", "run"} <= names
    assert {"simulate spectra", "galaxy train", "galaxy decompose", "discover"} <= names
    n_options = sum(len(c.params) for _, c in COMMANDS)
    assert n_options > 150  # every parameter of every command is varied below


def _sweep(bad_files, capsys, exhaustive: bool) -> None:
    failures = []
    for path, args in _cases(bad_files, exhaustive):
        problem = _check(path, args, capsys, bad_files)
        if problem:
            failures.append(problem)
    assert not failures, f"{len(failures)} hostile cases failed:\n" + "\n".join(failures[:40])


# astropy's fits.open leaves a corrupt file's handle to the garbage collector
# (a ResourceWarning, not a failure of ours)
_UNCLOSED = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@_UNCLOSED
def test_every_option_of_every_command_fails_in_one_line(bad_files, capsys, monkeypatch) -> None:
    monkeypatch.chdir(bad_files["user_dir"].parent)
    _sweep(bad_files, capsys, exhaustive=False)


@pytest.mark.slow
@_UNCLOSED
def test_every_value_for_every_option(bad_files, capsys, monkeypatch) -> None:
    monkeypatch.chdir(bad_files["user_dir"].parent)
    _sweep(bad_files, capsys, exhaustive=True)


def test_traceback_only_with_verbose(capsys, monkeypatch, tmp_path) -> None:
    def boom(*_a, **_k):
        raise RuntimeError("a library broke")

    monkeypatch.setattr("astrolatent.data.store.SpectrumStore.__init__", boom)
    assert run(["info", str(tmp_path)]) == 1
    _, err = capsys.readouterr()
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: a library broke (-v shows the traceback)"
    ]
    assert run(["-v", "info", str(tmp_path)]) == 1
    _, err = capsys.readouterr()
    assert "Traceback" in err and "a library broke" in err


# --- property-based: label tables and readers -----------------------------------------
_ids = st.text(alphabet="0123456789.eE-+ abcNA", min_size=0, max_size=6)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(_ids, min_size=1, max_size=8))
def test_label_ids_are_the_text_written(tmp_path, ids) -> None:
    from astrolatent.data.labels import load_labels

    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ids, "teff": np.arange(len(ids), dtype=float)}).to_csv(path, index=False)
    text = [i.strip() for i in ids]
    try:
        frame = load_labels(path, "id")
    except LabelError as exc:
        assert "" in text or len(set(text)) < len(text), str(exc)
        return
    assert "" not in text and len(set(text)) == len(text)
    assert list(frame.index) == text  # 0001 stays 0001, 1.0 stays 1.0, NA stays NA
    assert np.allclose(frame["teff"], np.arange(len(ids)))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.one_of(st.floats(allow_nan=False, width=32), st.text(max_size=4)), min_size=2, max_size=8
    )
)
def test_text_in_a_numeric_column_is_named(tmp_path, cells) -> None:
    from astrolatent.tables import non_numeric, numeric_columns

    frame = pd.DataFrame({"x": pd.Series(cells, dtype=object)})
    bad = non_numeric(frame["x"])
    try:
        values = numeric_columns(frame, ["x"], source="t.csv")
    except InputFileError as exc:
        assert "'x'" in str(exc) and str(exc).startswith("t.csv: ")
        return
    assert not bad
    finite = [float(c) for c in cells if not (isinstance(c, str) and not c.strip())]
    assert np.allclose(values[~np.isnan(values[:, 0]), 0], [v for v in finite if not math.isnan(v)])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=4000), header=st.booleans())
def test_readers_turn_any_bytes_into_input_file_errors(tmp_path, blob, header) -> None:
    from astrolatent.data import readers

    path = tmp_path / "x.fits"
    path.write_bytes((b"SIMPLE  =                    T" + b" " * 50 if header else b"") + blob)
    try:
        name = readers.identify(path)
        readers.get(name).read(path, 0, 1)
    except InputFileError as exc:
        assert str(exc).startswith(str(path))


# --- the cases of issue 14, each with its exit code and message ------------------------
ISSUE_CASES = [
    (["train", "{store}", "--run", "{tmp}/r", "--config", "{binary}"], 2, "not a text (YAML/JSON)"),
    (["train", "{store}", "--run", "{tmp}/r", "--accelerator", "gpu"], 2, "no CUDA GPU"),
    (
        ["train", "{store}", "--run", "{tmp}/r", "--devices", "1000"],
        2,
        "--devices 1000: this machine has",
    ),
    (["train", "{store}", "--run", "{tmp}/r", "--resume"], 2, "holds no run to resume"),
    (["encode", "{run}", "--device", "tpu"], 2, "not a device name"),
    (["encode", "{run}", "--device", "meta"], 2, "astrolatent runs on cpu, cuda or mps"),
    (["encode", "{run}", "--device", "cuda:7"], 2, "CUDA GPUs"),
    (["encode", "{run}", "--device", "nonsense"], 2, "not a device name"),
    (["encode", "{run}", "--out", "{tmp}"], 6, "is a folder"),
    (
        ["ingest", "{fits}", "--store", "{tmp}/s", "--grid", "3000,9000,1e-9"],
        2,
        "more than 10,000,000",
    ),
    (
        ["ingest", "{fits}", "--store", "{tmp}/s", "--pad-to", "100"],
        2,
        "pad_to=100 is shorter than the grid",
    ),
    (
        ["ingest", "{fits}", "--store", "{tmp}/s", "--min-median", "nan"],
        2,
        "min_median: Input should be a finite",
    ),
    (["ingest", "{fits}", "--store", "{notes}"], 6, "is a file"),
    (["ingest", "{fits}", "--store", "/proc/astrolatent-store"], 8, "/proc/astrolatent-store: "),
    (["simulate", "spectra", "{notes}", "--n", "3"], 6, "is a file"),
    (["simulate", "spectra", "{tmp}/sim", "--n", "100000000000"], 2, "GB free"),
    (["mi", "{csv}", "--x", "a", "--y", "b", "--sigma", "-1"], 2, "sigma -1.0: must be 0"),
    (["discover", "{csv}", "--vars", "a,teff"], 3, "column 'teff' holds 1 distinct non-numeric"),
    (["discover", "{gauss}", "--vars", "a,b,c", "--out", "{notes}"], 6, "--out is a file"),
]


@pytest.mark.parametrize(("args", "code", "message"), ISSUE_CASES)
def test_the_reported_cases_fail_in_one_line(
    args, code, message, tiny_store, analyzed_run, tmp_path, capsys
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    binary = tmp_path / "c.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,teff\n1,2,3\n2,3,x\n3,1,4\n")
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    gauss = tmp_path / "g.csv"
    pd.DataFrame({"a": x, "b": x + rng.normal(size=300), "c": rng.normal(size=300)}).to_csv(
        gauss, index=False
    )
    names = {
        "store": tiny_store,
        "run": analyzed_run,
        "fits": tiny_store.parent / "fits",
        "tmp": tmp_path,
        "notes": notes,
        "binary": binary,
        "csv": csv,
        "gauss": gauss,
    }
    assert run([a.format(**names) for a in args]) == code
    err = capsys.readouterr().err.strip()
    assert err.count("error:") == 1 and message in err and "Traceback" not in err
    assert notes.read_text() == "mine\n"
    assert not (tmp_path / "r").exists() and not (tmp_path / "sim").exists()


def test_a_file_reached_by_two_paths_is_read_once(tmp_path, eso_folder) -> None:
    from astrolatent.data.ingest import expand_inputs

    link = tmp_path / "link.fits"
    first = sorted(eso_folder.glob("*.fits"))[0]
    link.symlink_to(first)
    hard = tmp_path / "hard.fits"
    hard.hardlink_to(first)
    files, _ = expand_inputs([eso_folder, link, hard, eso_folder / ".." / eso_folder.name])
    assert len(files) == 12 and files[0] == first.resolve()
