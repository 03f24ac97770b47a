"""The report of a run: one self-contained HTML file, plus its figures as PNG files.

:func:`build_report` writes ``RUN/report/report.html`` (every figure embedded as a base64
PNG, inline CSS, no external resource: it opens offline) and ``RUN/report/figures/*.png``.
Every number it shows is read from the run's JSON/CSV outputs; numbers the report computes
itself (the store summary, reconstruction errors) are first written next to it
(``data_summary.json``, ``reconstructions.csv``) and read from there.

Spectrum runs (``astrolatent train`` / ``encode`` / ``analyze``): run and data summary,
training curves, informative dimensions by both methods, MI heat maps (published form and
ours), MI with error bars, best-latent scatter plots, traversals with their most responsive
wavelengths, disentanglement next to the PCA baseline, reconstructions of a typical and the
worst spectrum. Galaxy estimator runs (``RUN/predictions.parquet``): held-out metrics, PDF
examples. For both: every ``decomposition.json``, ``local.json`` and ``discovery.json``
found under the run. The configuration files and the commands that produced the run close
the report.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
import yaml

from astrolatent import figures
from astrolatent.analysis.causal.local import summary_rows
from astrolatent.analysis.pid.base import ATOMS
from astrolatent.errors import ConfigError, RunError
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_text_atomic
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    CONFIG_FILE,
    DATA_SUMMARY_FILE,
    PDF_EXAMPLES_FILE,
    RECONSTRUCTION_EXAMPLES_FILE,
    RECONSTRUCTIONS_FILE,
    REPORT_DIR,
    REPORT_FILE,
)
from astrolatent.outputs.summaries import analysed_dims, load_summary

log = logging.getLogger(__name__)

#: The resolved pipeline configuration a run made by ``astrolatent run`` carries.
PIPELINE_FILE = "pipeline.yaml"
#: Spectra reconstructed to find the typical and the worst reconstruction.

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:1.2em 2em}
header h1{margin:0 0 .3em 0;font-size:1.6em}
header p{margin:.1em 0;opacity:.9}
nav{background:#e8edf3;padding:.5em 2em;font-size:.9em}
nav a{margin-right:1.2em;color:#1f3a5f;text-decoration:none}
main{padding:0 2em 2em 2em;max-width:1200px}
section{background:#fff;border:1px solid #dde;border-radius:6px;margin:1.2em 0;padding:.8em 1.4em}
h2{color:#1f3a5f;border-bottom:1px solid #dde;padding-bottom:.2em}
h3{color:#334}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eef1f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.8em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;max-width:60em}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;margin:.6em 0}
.keyfacts{font-size:1.05em}
.keyfacts li{margin:.2em 0}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:.8em}
code{background:#f0f0f0;padding:0 .2em}
details summary{cursor:pointer;color:#1f3a5f}
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>$css</style>
</head>
<body>
<header><h1>$title</h1>$subtitle</header>
<nav>$nav</nav>
<main>
$sections
</main>
</body>
</html>
"""
)


# ---------------------------------------------------------------------------------------
# small HTML helpers: every value goes through html.escape
# ---------------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: object, digits: int = 3) -> str:
    """A number as the report prints it (``digits`` decimals; ints as ints; None as -)."""
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def pm(value: object, error: object, digits: int = 3) -> str:
    """``value ± error`` as the report prints it."""
    return f"{fmt(value, digits)} ± {fmt(error, digits)}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, int | float | np.integer | np.floating) and not isinstance(
                cell, bool
            )
            text = fmt(cell) if numeric or cell is None else str(cell)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    return _table(["quantity", "value"], pairs)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _p(text: str) -> str:
    return f"<p>{_e(text)}</p>"


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read JSON ({exc})") from None


class _Figures:
    """Collects figures into ``folder`` and returns them as embedded ``<figure>`` blocks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: set[str] = set()

    def _unique(self, name: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        stem, k = name, 1
        while name in self.names:
            k += 1
            name = f"{stem}_{k}"
        self.names.add(name)
        return self.folder / f"{name}.png"

    def _embed(self, path: Path, caption: str) -> str:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (
            f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )

    def existing(self, path: Path, caption: str, *, name: str | None = None) -> str:
        """Copy a PNG written by an analysis into the report and embed it ('' if absent)."""
        if not path.is_file():
            return ""
        target = self._unique(name or path.stem)
        shutil.copyfile(path, target)
        return self._embed(target, caption)

    def new(self, fig, name: str, caption: str) -> str:
        """Save a new matplotlib figure into the report and embed it."""
        target = self._unique(name)
        figures.save(fig, target)
        return self._embed(target, caption)


class _Section:
    def __init__(self, anchor: str, title: str, body: str) -> None:
        self.anchor, self.title, self.body = anchor, title, body

    def html(self) -> str:
        return f'<section id="{_e(self.anchor)}"><h2>{_e(self.title)}</h2>{self.body}</section>'


# ---------------------------------------------------------------------------------------
# shared by the CLI summary and the report
# ---------------------------------------------------------------------------------------
def dimension_labels(summary: dict) -> dict[int, list[dict]]:
    """For each informative dim of an analysis ``summary``, the labels it tracks: those whose
    MI with it is significant (FWER), as dicts ``label``, ``mi``, ``mi_err``, ``r_info`` (of
    this dim) and ``best`` (this dim has the label's largest MI among the informative dims);
    the labels it is best for come first, then by MI."""
    informative = summary["informative"]
    out: dict[int, list[dict]] = {d: [] for d in analysed_dims(informative)}
    for name, block in summary.get("labels", {}).items():
        per_dim = {int(p["dim"]): p for p in block["per_dim"] if int(p["dim"]) in out}
        if not per_dim:
            continue
        best = max(per_dim, key=lambda d: per_dim[d]["mi"])
        for d in block["significant_dims"]:
            if int(d) in per_dim:
                p = per_dim[int(d)]
                out[int(d)].append(
                    {
                        "label": name,
                        "mi": p["mi"],
                        "mi_err": p["mi_err"],
                        "r_info": p["r_info"],
                        "best": int(d) == best,
                    }
                )
    for rows in out.values():
        rows.sort(key=lambda r: (not r["best"], -r["mi"]))
    return out


def describe_tracks(rows: list[dict], *, limit: int = 2) -> str:
    """One line for a dim's :func:`dimension_labels` entry (its ``limit`` strongest labels)."""
    if not rows:
        return "no label (no significant MI)"
    parts = [
        f"{r['label']}{' (best informative dim)' if r['best'] else ''}: MI {pm(r['mi'], r['mi_err'])} "
        f"nats, r_I {fmt(r['r_info'], 2)}"
        for r in rows[:limit]
    ]
    more = f"; +{len(rows) - limit} more" if len(rows) > limit else ""
    return "; ".join(parts) + more


# ---------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------
_OLD_FIGURES_MARK = ".astrolatent-report"  # the mark of reports written before outputs.marks


def _fresh_figure_dir(path: Path) -> Path:
    """An empty ``figures`` folder beside the report ``path``: an earlier report's figures
    there are removed; a folder of that name that astrolatent did not write is refused. A
    report folder that does not exist yet is created and marked."""
    if not path.parent.exists():
        marks.claim(path.parent, "report", (path.name, "figures"), what="report folder")
    return marks.fresh(
        path.parent / "figures",
        "figures",
        ("*.png", _OLD_FIGURES_MARK),
        legacy=lambda folder: (folder / _OLD_FIGURES_MARK).is_file(),
        what="the report's figures folder",
    )


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run; return the path of ``report.html``.

    Args:
        run_dir: a spectrum run (after ``astrolatent encode`` and ``analyze``) or a galaxy
            estimator run (``astrolatent galaxy train``).
        out: the HTML file (default ``RUN/report/report.html``); the figures go to
            ``figures/`` beside it.

    Raises:
        ConfigError: ``run_dir`` is not a run, or a spectrum run lacks its latents or its
            analysis (the message names the command to run).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunError(
            f"{run_dir}: not a run directory (no config.yaml); make one with `astrolatent train` "
            "or `astrolatent galaxy train`"
        )
    path = Path(out) if out is not None else run_dir / REPORT_DIR / REPORT_FILE
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {path}: the report is an HTML file; give a name ending in .html")
    fig_dir = _fresh_figure_dir(path)
    figs = _Figures(fig_dir)
    if (run_dir / "predictions.parquet").is_file():
        kind = "galaxy estimator run"
        sections = _galaxy_sections(run_dir, figs)
    else:
        kind = "spectrum run"
        sections = _spectrum_sections(run_dir, figs)
    sections += _extension_sections(run_dir, figs, exclude=path.parent)
    sections.append(_provenance(run_dir, kind))
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = _PAGE.substitute(
        title=_e(f"astrolatent report: {run_dir.resolve().name}"),
        subtitle=f"<p>{_e(kind)}: {_e(run_dir.resolve())}</p><p>generated {_e(when)}</p>",
        css=_CSS,
        nav="".join(f'<a href="#{_e(s.anchor)}">{_e(s.title)}</a>' for s in sections),
        sections="\n".join(s.html() for s in sections),
    )
    write_text_atomic(path, page)
    log.info("report written to %s (%d figures)", path, len(figs.names))
    return path


# ---------------------------------------------------------------------------------------
# spectrum runs
# ---------------------------------------------------------------------------------------
def _spectrum_sections(run_dir: Path, figs: _Figures) -> list[_Section]:
    if not (run_dir / "latents.parquet").is_file():
        raise RunError(
            f"{run_dir}: no latents.parquet; run `astrolatent encode {run_dir}` "
            f"then `astrolatent analyze {run_dir}` first"
        )
    analysis = run_dir / "analysis"
    summary = load_summary(run_dir)
    train = (
        _read_json(run_dir / "train_summary.json")
        if (run_dir / "train_summary.json").is_file()
        else None
    )
    return [
        _overview(summary, train),
        _data_section(analysis),
        _training_section(run_dir, train, figs),
        _informative_section(summary, analysis, figs),
        _mi_section(summary, analysis, figs),
        _scatter_section(summary, analysis, figs),
        _traversal_section(analysis, figs),
        *_beyond_labels_section(summary, analysis, figs),
        _disentanglement_section(summary),
        _reconstruction_section(analysis, figs),
    ]


def _overview(summary: dict, train: dict | None) -> _Section:
    inf = summary["informative"]
    roles = dimension_labels(summary)
    items = [
        f"{fmt(summary['n_spectra'])} spectra encoded into {fmt(summary['n_latent'])} latent dimensions",
        f"informative dimensions: {len(inf['dispersion']['dims'])} by dispersion "
        f"{inf['dispersion']['dims']}, {len(inf['kl']['dims'])} by KL rate {inf['kl']['dims']}, "
        f"{len(inf['agreed'])} by both",
    ]
    if train is not None:
        items.append(
            f"trained ({_e(train.get('preset'))}) for {fmt(train.get('steps'))} steps, "
            f"{fmt(train.get('epochs'), 1)} epochs; stopped by {train.get('stopped_by')}"
        )
    body = '<ul class="keyfacts">' + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"
    rows = [(dim, describe_tracks(tracks)) for dim, tracks in roles.items()]
    body += "<h3>What each informative dimension tracks</h3>"
    body += _table(["dim", "labels with significant MI, strongest first"], rows)
    return _Section("summary", "Summary", body)


def _data_section(analysis: Path) -> _Section:
    path = analysis / DATA_SUMMARY_FILE
    if not path.is_file():
        return _Section(
            "data",
            "Data",
            _note(f"no {path.name} (written by `astrolatent analyze`): no data summary"),
        )
    data = _read_json(path)
    lo, hi = data["wavelength_range"]
    body = _kv_table(
        [
            ("store", data["path"]),
            ("spectra accepted", data["n_spectra"]),
            ("objects", data["n_objects"]),
            ("spectra rejected", data["n_rejected"]),
            ("files quarantined", data["n_quarantined"]),
            ("pixels per spectrum", f"{fmt(data['length'])} ({data['dtype']})"),
            ("wavelength (A)", f"{fmt(lo, 2)} - {fmt(hi, 2)}"),
            ("format / preset", f"{data['format']} / {data['preset']}"),
        ]
    )
    if data["rejection_reasons"]:
        body += "<h3>Rejections</h3>" + _table(
            ["reason", "spectra"], data["rejection_reasons"].items()
        )
    if data["quarantined"]:
        shown = data["quarantined"][:20]
        body += "<h3>Quarantined files</h3>" + _table(
            ["file", "reason"], [(q["file"], q["reason"]) for q in shown]
        )
        if len(data["quarantined"]) > 20:
            body += _p(f"... and {len(data['quarantined']) - 20} more (data_summary.json)")
    body += "<h3>Labels (spectra with a value)</h3>" + _table(
        ["label", "spectra"], data["label_coverage"].items()
    )
    if data["preprocess"]:
        body += "<h3>Preprocessing</h3>" + _pre(yaml.safe_dump(data["preprocess"], sort_keys=False))
    return _Section("data", "Data", body)


def _training_section(run_dir: Path, train: dict | None, figs: _Figures) -> _Section:
    if train is None:
        return _Section(
            "training", "Training", _note("no train_summary.json: the run did not finish")
        )
    keys = (
        "preset",
        "steps",
        "samples",
        "epochs",
        "n_train",
        "n_val",
        "n_parameters",
        "latent_dim",
        "kl_weight",
        "final_train_loss",
        "final_val_loss",
        "best_val_loss",
        "n_active_latents",
        "wall_seconds",
        "samples_per_second",
        "device",
        "stopped_by",
    )
    body = _kv_table((k, train[k]) for k in keys if k in train)
    metrics_path = run_dir / "metrics.csv"
    if metrics_path.is_file():
        frame = pd.read_csv(metrics_path)
        series = {
            name: (g["step"].to_numpy(), g["value"].to_numpy())
            for name, g in frame.groupby("metric")
            if name in ("train/loss", "val/loss", "train/recon", "val/recon")
        }
        if series:
            body += figs.new(
                figures.curves(
                    series,
                    xlabel="optimiser step",
                    ylabel="loss",
                    title="training curves (metrics.csv)",
                    logy=True,
                ),
                "training_curves",
                "Training and validation loss (reconstruction + weighted KL) and the reconstruction term.",
            )
    return _Section("training", "Training", body)


def _informative_section(summary: dict, analysis: Path, figs: _Figures) -> _Section:
    inf = summary["informative"]
    disp, kl = set(inf["dispersion"]["dims"]), set(inf["kl"]["dims"])
    body = _table(
        ["method", "threshold", "informative dims", "count"],
        [
            (
                "dispersion (MAD of the latent means)",
                inf["dispersion"]["threshold"],
                str(inf["dispersion"]["dims"]),
                len(disp),
            ),
            ("KL rate (nats)", inf["kl"]["threshold"], str(inf["kl"]["dims"]), len(kl)),
            ("both", "", str(inf["agreed"]), len(inf["agreed"])),
        ],
    )
    if disp != kl:
        body += _p(
            f"The methods disagree on dims {sorted(disp ^ kl)}: "
            f"dispersion only {sorted(disp - kl)}, KL rate only {sorted(kl - disp)}."
        )
    else:
        body += _p("Both methods select the same dimensions.")
    red = inf.get("redundancy")
    if red:
        body += _p(
            f"Total correlation among the informative dims {red['dims']}: "
            f"{fmt(red['total_correlation'])} nats (0 when they are independent)."
        )
    body += figs.existing(
        analysis / "informative_dims.png",
        "Per-dimension dispersion and KL rate (log scale); orange: informative, dashed: cut.",
    )
    return _Section("informative", "Informative dimensions", body)


def _mi_section(summary: dict, analysis: Path, figs: _Figures) -> _Section:
    labels = summary.get("labels", {})
    if not labels:
        return _Section(
            "mi", "Mutual information with labels", _note("no label was analysed (no labels?)")
        )
    pca = summary.get("baseline_pca", {}).get("labels", {})
    joint = summary.get("all_latents", {})
    ceiling = summary.get("ceiling", {})
    rows = []
    for name, b in labels.items():
        rows.append(
            (
                name,
                b["n"],
                b["best_dim"],
                pm(b["mi"], b["mi_err"]),
                fmt(b["r_info"], 2),
                _informative_best(b),
                fmt(b["p_value_fwer"]),
                fmt(b["significant"]),
                str(b["significant_dims"]),
                fmt(joint[name]["r"], 2) if name in joint else "-",
                fmt(pca[name]["r_info"], 2) if name in pca else "-",
                fmt(ceiling[name]["r"], 2) if name in ceiling else "-",
            )
        )
    body = _p(
        "Best latent per label: KSG mutual information (nats) with half-sampling error, "
        "informational correlation r_I = sqrt(1 - exp(-2 MI)), permutation p-value corrected "
        "for testing every latent (FWER); then cross-validated r of a regressor on all latents "
        "together (a label spread over several latents scores high here and low on r_I), the "
        "PCA baseline's best component, and the ceiling (a regressor on the spectra's "
        "principal components: what the spectra hold)."
    )
    body += _table(
        [
            "label",
            "n",
            "best dim",
            "MI (nats)",
            "r_I",
            "best informative dim (r_I)",
            "p (FWER)",
            "significant",
            "significant dims",
            "all latents r",
            "PCA best r_I",
            "ceiling r",
        ],
        rows,
    )
    body += "<h3>Ours: KSG MI with significance</h3>"
    body += figs.existing(
        analysis / "latent_mi_ksg.png",
        "KSG MI (nats) of every latent with every label; dots: significant at the FWER level.",
    )
    per_dim_path = analysis / "mi_per_dim.csv"
    if per_dim_path.is_file():
        table = pd.read_csv(per_dim_path)
        alpha = _analysis_alpha(analysis)
        for name, g in table.groupby("label", sort=False):
            g = g.sort_values("dim")
            body += figs.new(
                figures.mi_profile(
                    g["mi"].to_numpy(),
                    g["mi_err"].to_numpy(),
                    g["p_value_fwer"].to_numpy() < alpha,
                    label=str(name),
                    title=f"{name}: MI per latent with half-sampling errors (orange: p_FWER < {alpha})",
                ),
                f"mi_errorbars_{name}",
                f"{name}: MI per latent dimension with error bars (mi_per_dim.csv).",
            )
    body += "<h3>Published form: plug-in histogram MI, rows normalised</h3>"
    for name in labels:
        body += figs.existing(
            analysis / f"latent_mi_hist_{name}.png",
            f"{name}: plug-in histogram MI for 5-160 bins, each row divided by its max over dims "
            "(no bias correction: the floor rises with the bin count).",
        )
    return _Section("mi", "Mutual information with labels", body)


def _informative_best(block: dict) -> str:
    """A label's best informative dim and its r_I ("-" before format 2 or with none)."""
    dim = block.get("best_informative_dim")
    return "-" if dim is None else f"{dim} ({fmt(block['r_info_informative'], 2)})"


def _analysis_alpha(analysis: Path) -> float:
    path = analysis / "config.yaml"
    if path.is_file():
        return float((yaml.safe_load(path.read_text()) or {}).get("alpha", 0.05))
    return 0.05


def _scatter_section(summary: dict, analysis: Path, figs: _Figures) -> _Section:
    body = "".join(
        figs.existing(
            analysis / f"scatter_{name}.png",
            f"{name} against its best latent mu_{b['best_dim']} (r_I {fmt(b['r_info'], 2)}).",
        )
        for name, b in summary.get("labels", {}).items()
    )
    return _Section("scatter", "Best latent per label", body or _note("no scatter plots"))


def _traversal_section(analysis: Path, figs: _Figures) -> _Section:
    path = analysis / "traversals.json"
    if not path.is_file():
        return _Section(
            "traversals",
            "Latent traversals",
            _note("no traversals.json: the analysis had no model or no informative dimension"),
        )
    body = _p(
        "Each informative dim swept from -3 to +3 sigma around the sample median (others "
        "fixed), decoded; bottom panels: the response (max - min of the decoded flux) with the "
        "most responsive wavelengths marked and known lines labelled."
    )
    for t in _read_json(path):
        dim = t["dim"]
        top = t.get("top_wavelengths", [])
        body += f"<h3>dim {_e(dim)}</h3>"
        body += figs.existing(analysis / f"traversal_dim{dim}.png", f"Traversal of latent {dim}.")
        body += _table(
            ["wavelength (A)", "response", "line"],
            [(fmt(w["wavelength"], 2), w["response"], w.get("line") or "") for w in top],
        )
    return _Section("traversals", "Latent traversals", body)


def _beyond_labels_section(summary: dict, analysis: Path, figs: _Figures) -> list[_Section]:
    """ "What the spectra hold beyond your labels": the audit of a run with known labels
    (none for a run without)."""
    free = summary.get("free")
    if free is None:
        return []
    alpha = _analysis_alpha(analysis)
    known = summary.get("known", {})
    body = _p(
        "The run was told these labels, each tied to its own latent (supervised where the "
        "store has the label, inferred by the encoder elsewhere); measured on the spectra "
        "that have the label:"
    )
    body += _table(
        ["known label", "tied dim", "r_I", "MI (nats)", "spectra"],
        [(k, v["dim"], v["r_info"], pm(v["mi"], v["mi_err"]), v["n"]) for k, v in known.items()],
    )
    dims = free.get("dims", [])
    body += _p(
        f"Informative free dims (counted on the free dims alone; dims held at the KL floor "
        f"left out): {', '.join(map(str, dims)) if dims else 'none'}."
    )
    body += "<h3>Other labels in the free dims</h3>"
    body += _p(
        "Best free dim of each label that was not given, and its conditional MI given the "
        "tied latents (what it adds to the known labels; p: local permutations, "
        "Bonferroni-corrected over the free dims)."
    )
    body += _table(
        ["label", "best free dim", "r_I", "MI given the known (nats)", "p"],
        [
            (
                k,
                v["best_dim"],
                v["r_info"],
                pm(v["cmi_given_known"], v.get("cmi_err")),
                v["p_value"],
            )
            for k, v in free.get("labels", {}).items()
        ],
    )
    body += "<h3>Leakage of the known labels into the free dims</h3>"
    body += _table(
        [
            "known label",
            "largest MI of a free dim (nats)",
            "dim",
            "p (over the free dims)",
            "R^2 from all free dims",
            "verdict",
        ],
        [
            (
                k,
                v["max_mi"],
                v.get("dim", "-"),
                v["p_value"],
                v["r2"],
                "leaks"
                if v["p_value"] is not None and v["p_value"] < alpha
                else "no leakage found",
            )
            for k, v in free.get("leakage", {}).items()
        ],
    )
    for dim in dims:
        body += figs.existing(
            analysis / f"traversal_dim{dim}.png", f"Traversal of free latent {dim}."
        )
    return [_Section("beyond-labels", "What the spectra hold beyond your labels", body)]


def _disentanglement_section(summary: dict) -> _Section:
    ours = summary.get("disentanglement")
    if ours is None:
        return _Section(
            "disentanglement",
            "Disentanglement",
            _note(
                "no disentanglement scores: they need at least 100 spectra with every "
                "analysed label and an informative dimension"
            ),
        )
    base = summary.get("baseline_pca", {}).get("disentanglement")

    def scores(block: dict | None) -> list[object]:
        if block is None:
            return ["-"] * 5
        dci = block["dci"]
        return [
            block["mig"],
            block["sap"],
            dci["disentanglement"],
            dci["completeness"],
            dci["informativeness"],
        ]

    names = ["MIG", "SAP", "DCI disentanglement", "DCI completeness", "DCI informativeness"]
    body = _p(
        f"Scores of the latents {ours['dims']} against the labels {ours['labels']}, next to "
        "the same number of principal components of the spectra (higher is better)."
    )
    body += _table(
        ["score", "latents", "PCA baseline"],
        [(n, a, b) for n, a, b in zip(names, scores(ours), scores(base), strict=True)],
    )
    return _Section("disentanglement", "Disentanglement", body)


def _reconstruction_section(analysis: Path, figs: _Figures) -> _Section:
    csv, examples = analysis / RECONSTRUCTIONS_FILE, analysis / RECONSTRUCTION_EXAMPLES_FILE
    if not (csv.is_file() and examples.is_file()):
        return _Section(
            "reconstructions",
            "Reconstructions",
            _note(f"no {csv.name} (written by `astrolatent analyze`): no reconstructions"),
        )
    table = pd.read_parquet(csv)
    l1 = table["l1"].to_numpy()
    body = _p(
        f"{len(table)} spectra (a seeded random sample) encoded and decoded from their latent "
        f"means; masked mean |input - reconstruction| per spectrum in {csv.name}."
    )
    body += _kv_table(
        [
            ("spectra", len(table)),
            ("median L1", float(np.median(l1))),
            ("90th percentile L1", float(np.quantile(l1, 0.9))),
            ("worst L1", float(np.max(l1))),
        ]
    )
    with np.load(examples) as rec:
        for i, label in enumerate(rec["kind"]):
            spectrum, err = str(rec["id"][i]), fmt(float(rec["l1"][i]), 4)
            body += figs.new(
                figures.reconstruction_plot(
                    rec["wave"],
                    rec["flux"][i],
                    rec["recon"][i],
                    rec["valid"][i],
                    title=f"{label}: {spectrum} (L1 {err})",
                ),
                f"reconstruction_{label}",
                f"A {label} reconstruction: {spectrum}, masked L1 {err}.",
            )
    return _Section("reconstructions", "Reconstructions", body)


# ---------------------------------------------------------------------------------------
# galaxy estimator runs
# ---------------------------------------------------------------------------------------
def _galaxy_sections(run_dir: Path, figs: _Figures) -> list[_Section]:
    path = run_dir / "train_summary.json"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; the galaxy run did not finish")
    summary = _read_json(path)
    overview = _kv_table(
        [
            ("catalogue", summary.get("table")),
            ("target", summary.get("target")),
            ("inputs", ", ".join(summary.get("columns", []))),
            ("images", summary.get("images") or "none"),
            ("usable objects", summary.get("n_objects")),
            ("models trained", summary.get("n_models")),
            ("latent dimensions", summary.get("latent_dim")),
            ("parameters per model", summary.get("n_parameters")),
        ]
    )
    cleaning = summary.get("cleaning") or {}
    scalars = [(k, v) for k, v in cleaning.items() if not isinstance(v, dict | list)]
    if scalars:
        overview += "<h3>Cleaning</h3>" + _kv_table(scalars)
    sections = [_Section("summary", "Summary", overview)]

    m = summary.get("metrics") or {}
    body = ""
    estimates = [k for k in ("mean", "median", "mode") if k in m]
    if estimates:
        body += _table(
            ["point estimate", "bias", "sigma_MAD", "outlier fraction", "n"],
            [
                (k, m[k]["bias"], m[k]["sigma_mad"], m[k]["outlier_fraction"], m[k]["n"])
                for k in estimates
            ],
        )
        body += _kv_table(
            (f"{k} {unit}", m[k])
            for k, unit in (
                ("crps", ""),
                ("ce", "(nats)"),
                ("prior_ce", "(nats)"),
                ("mi", "(nats, prior_ce - ce)"),
                ("truth_std", ""),
                ("n", ""),
            )
            if k in m
        )
    else:
        body += _note("no held-out metrics (test_fraction = 0?)")
    models = summary.get("models") or []
    if models:
        cols = [
            c
            for c in (
                "model",
                "n_train",
                "n_val",
                "n_test",
                "epochs",
                "best_epoch",
                "best_val_ce",
                "stopped_by",
                "seconds",
            )
            if c in models[0]
        ]
        body += "<h3>Models</h3>" + _table(cols, [[r.get(c) for c in cols] for r in models])
    sections.append(_Section("metrics", "Estimator metrics", body))
    sections.append(_galaxy_predictions(run_dir, summary, figs))
    return sections


def _galaxy_predictions(run_dir: Path, summary: dict, figs: _Figures) -> _Section:
    pred = pd.read_parquet(run_dir / "predictions.parquet")
    target = summary.get("target", "target")
    if pred.empty:
        return _Section("pdfs", "Predictions and PDFs", _note("predictions.parquet is empty"))
    body = figs.new(
        figures.label_scatter(
            pred["truth"].to_numpy(float),
            pred["median"].to_numpy(float),
            xlabel=f"true {target}",
            ylabel=f"PDF median of {target}",
            title=f"held-out objects (n = {len(pred)})",
        ),
        "predictions",
        "Median of each held-out PDF against the truth (predictions.parquet).",
    )
    body += _pdf_examples(run_dir, target, figs)
    return _Section("pdfs", "Predictions and PDFs", body)


def _pdf_examples(run_dir: Path, target: str, figs: _Figures) -> str:
    """PDFs of four held-out objects of model 0 (best, two typical, worst by |median - truth|),
    as ``galaxy train`` wrote them."""
    path = run_dir / PDF_EXAMPLES_FILE
    if not path.is_file():
        return _note(f"no {path.name} (written by `astrolatent galaxy train`): no PDF examples")
    with np.load(path) as ex:
        titles = [
            f"{kind}: id {i}, |median - truth| {fmt(float(e), 3)}"
            for kind, i, e in zip(ex["kind"], ex["id"], ex["error"], strict=True)
        ]
        fig = figures.pdf_examples(ex["centres"], ex["probs"], ex["truth"], titles, xlabel=target)
    return figs.new(
        fig, "pdf_examples", "Estimated PDFs of held-out objects (model 0) with the truth marked."
    )


# ---------------------------------------------------------------------------------------
# decomposition, local causal tests, causal discovery (any run)
# ---------------------------------------------------------------------------------------
def _extension_sections(run_dir: Path, figs: _Figures, *, exclude: Path) -> list[_Section]:
    def found(name: str) -> list[Path]:
        return sorted(p for p in run_dir.rglob(name) if exclude not in p.parents)

    sections = []
    for name, anchor, title, render in (
        ("decomposition.json", "decomposition", "MI decomposition", _decomposition),
        ("local.json", "local", "Local causal tests", _local),
        ("discovery.json", "discovery", "Causal discovery", _discovery),
    ):
        paths = found(name)
        if paths:
            body = "".join(render(p, run_dir, figs) for p in paths)
            sections.append(_Section(anchor, title, body))
    return sections


def _folder_figures(folder: Path, figs: _Figures, *, skip: Sequence[str] = ()) -> str:
    pngs = [p for p in sorted(folder.glob("*.png")) if p.name not in skip]
    if not pngs:
        return ""
    inner = "".join(figs.existing(p, p.name, name=f"{folder.name}_{p.stem}") for p in pngs)
    return (
        f"<details><summary>figures in {_e(folder.name)}/ ({len(pngs)})</summary>{inner}</details>"
    )


def _atoms_table(groups: list[tuple[str, dict]]) -> str:
    return _table(
        ["group", "n", *ATOMS],
        [
            (g, row.get("n", "-"), *(pm(row.get(a), row.get(f"{a}_err")) for a in ATOMS))
            for g, row in groups
        ],
    )


def _decomposition(path: Path, run_dir: Path, figs: _Figures) -> str:
    """A ``decomposition.json`` of ``astrolatent galaxy decompose`` (the shape of
    :meth:`RunDecomposition.to_dict`), with the figures it lists."""
    d = _read_json(path)
    missing = [k for k in ATOMS if k not in d]
    if missing:
        return _note(f"{path}: lacks {missing}; not a decomposition.json of the contract shape")
    rel = path.parent.relative_to(run_dir)
    name1, name2 = (
        ", ".join(x) if isinstance(x, list) else str(x) for x in (d.get("x1"), d.get("x2"))
    )
    body = f"<h3>{_e(rel)}: {_e(d.get('target'))} from X1 = {_e(name1)} and X2 = {_e(name2)}</h3>"
    body += _p(f"method {d.get('method')}, n = {fmt(d.get('n'))} objects; nats per object.")
    if d.get("method") == "pointwise":
        body += _note(
            "the pointwise minimum-MI measure (the 2025 study's) is biased: the mean of the "
            "per-object minima sits below the minimum of the mean MIs, so redundancy comes out "
            "low, unique information high and synergy negative (docs/results.md, canonical "
            "PID cases); the default measure mmi is not"
        )
    if d.get("note"):
        body += _note(str(d["note"]))
    overall = {**{k: d.get(k) for a in ATOMS for k in (a, f"{a}_err")}, "n": d.get("n")}
    by_class = [(str(g), row) for g, row in (d.get("by_class") or {}).items()]
    body += _atoms_table([("all", overall), *by_class])
    for column, rows in (d.get("by_bin") or {}).items():
        body += f"<h4>in bins of {_e(column)}</h4>"
        body += _atoms_table([(f"{fmt(r['low'])} to {fmt(r['high'])}", r) for r in rows])
    for name in (d.get("figures") or {}).values():
        if str(name).endswith(".png"):
            body += figs.existing(
                path.parent / name, name, name=f"{path.parent.name}_{Path(name).stem}"
            )
    return body


def _local(path: Path, run_dir: Path, figs: _Figures) -> str:
    """A ``local.json`` of ``astrolatent causal`` (settings and the tests' summaries)."""
    d = _read_json(path)
    rel = path.parent.relative_to(run_dir)
    body = f"<h3>{_e(rel)}</h3>"
    body += _p(
        f"target {d.get('target')}, query {d.get('query')}"
        + (f", conditioning on {', '.join(d['condition'])}" if d.get("condition") else "")
        + f"; {fmt(d.get('n_evaluated'))} objects, neighbourhoods of {fmt(d.get('n_neighbors'))} "
        f"in S, alpha {fmt(d.get('alpha'))}."
    )
    headers, rows = summary_rows(d)
    body += _table(headers, rows) if rows else _note(f"{path}: no test summaries")
    return body + _folder_figures(path.parent, figs)


def _discovery(path: Path, run_dir: Path, figs: _Figures) -> str:
    d = _read_json(path)
    rel = path.parent.relative_to(run_dir)
    body = f"<h3>{_e(rel)}</h3>"
    body += _p(
        f"method {d.get('method')}; {len(d.get('nodes', []))} nodes: {', '.join(map(str, d.get('nodes', [])))}"
    )
    edges = d.get("edges", [])
    if edges:
        body += _table(
            ["from", "to", "type", "stability"],
            [(e.get("from"), e.get("to"), e.get("type"), e.get("stability")) for e in edges],
        )
    else:
        body += _p("no edges found")
    body += figs.existing(
        path.parent / "graph.png", "The discovered graph.", name=f"{path.parent.name}_graph"
    )
    return body + _folder_figures(path.parent, figs, skip=("graph.png",))


# ---------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------
def _provenance(run_dir: Path, kind: str) -> _Section:
    body = ""
    pipeline = run_dir / PIPELINE_FILE
    if pipeline.is_file():
        source = (yaml.safe_load(pipeline.read_text()) or {}).get("source", PIPELINE_FILE)
        body += _p("Produced by the pipeline command:") + _pre(f"astrolatent run {source}")
    body += _p(
        "Commands that repeat this run into a new run directory NEW_RUN (the configuration "
        "files below hold every option):"
    )
    body += _pre("\n".join(_commands(run_dir, kind)))
    files = [("config.yaml", run_dir / "config.yaml")]
    if kind == "spectrum run":
        files.append(("analysis/config.yaml", run_dir / "analysis" / "config.yaml"))
        store = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("store")
        if store and (Path(store) / "ingest.yaml").is_file():
            files.append((f"store {store}/ingest.yaml", Path(store) / "ingest.yaml"))
    if pipeline.is_file():
        files.append((PIPELINE_FILE, pipeline))
    for title, path in files:
        if path.is_file():
            body += f"<h3>{_e(title)}</h3>" + _pre(path.read_text())
    return _Section("provenance", "Commands and configuration", body)


def _commands(run_dir: Path, kind: str) -> list[str]:
    """Commands that repeat the run into a new run directory (NEW_RUN) with its settings."""
    run, new = str(run_dir), "NEW_RUN"
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if kind != "spectrum run":
        data = cfg.get("data", {})
        return [
            f"astrolatent galaxy train {data.get('table')} --target {data.get('target')} "
            f"--run {new} --config {run}/config.yaml",
            f"astrolatent report {new}",
        ]
    lines = [
        f"astrolatent train {cfg.get('store')} --run {new} --config {run}/config.yaml",
        f"astrolatent encode {new}",
    ]
    if (run_dir / ANALYSIS_DIR / CONFIG_FILE).is_file():
        lines.append(f"astrolatent analyze {new} --config {run}/{ANALYSIS_DIR}/{CONFIG_FILE}")
    lines.append(f"astrolatent report {new}")
    return lines


__all__ = [
    "REPORT_DIR",
    "REPORT_FILE",
    "build_report",
    "describe_tracks",
    "dimension_labels",
    "fmt",
    "pm",
]
