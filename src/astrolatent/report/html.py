"""The report of a run: one self-contained HTML file, plus its figures as PNG files.

:func:`build_report` writes ``RUN/report/report.html`` (every figure embedded as a base64
PNG, inline CSS, no external resource: it opens offline) and ``RUN/report/figures/*.png``.
Every number it shows is read from the run's outputs, written by the stage that computed
them (the store summary and the reconstructions by ``astrolatent analyze``, the PDF examples
by ``astrolatent galaxy train``): the report only reads.

Spectrum runs (``astrolatent train`` / ``encode`` / ``analyze``): run and data summary,
training curves, informative dimensions by both methods, MI heat maps (published form and
ours), MI with error bars, best-latent scatter plots, traversals with their most responsive
wavelengths, disentanglement next to the PCA baseline, reconstructions of a typical and the
worst spectrum. Galaxy estimator runs (``RUN/predictions.parquet``): held-out metrics, PDF
examples. For both: every ``decomposition.json``, ``local.json`` and ``discovery.json``
found under the run. The configuration files and the commands that produced the run close
the report.

This module assembles the page: the figures folder, the order of the sections, the page
frame. The HTML pieces are in :mod:`astrolatent.report.markup`; each section is a function
of the outputs already read, in one module per section family under
:mod:`astrolatent.report.sections`.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from string import Template

from astrolatent.config import Config
from astrolatent.errors import ConfigError, InputFileError, RunError
from astrolatent.outputs import marks
from astrolatent.outputs.io import write_text_atomic
from astrolatent.outputs.layout import (
    ANALYSIS_DIR,
    CONFIG_FILE,
    DATA_SUMMARY_FILE,
    DECOMPOSITION_FILE,
    DISCOVERY_FILE,
    LATENTS_FILE,
    LOCAL_FILE,
    PREDICTIONS_FILE,
    REPORT_DIR,
    REPORT_FILE,
    TRAIN_SUMMARY_FILE,
    TRAVERSALS_FILE,
)
from astrolatent.outputs.summaries import (
    load_data_summary,
    load_decomposition,
    load_discovery,
    load_galaxy_summary,
    load_local_tests,
    load_summary,
    load_train_summary,
    load_traversals,
)
from astrolatent.report.markup import Figures, Section, esc, fmt, note, pm
from astrolatent.report.sections import (
    audit,
    causal,
    dims,
    galaxy,
    mi,
    overview,
    provenance,
    reconstructions,
    traversals,
)
from astrolatent.report.sections.overview import describe_tracks, dimension_labels

log = logging.getLogger(__name__)


class ReportConfig(Config):
    """Options of ``astrolatent report``: the HTML file (None: ``RUN/report/report.html``)."""

    out: str | None = None


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
# entry point
# ---------------------------------------------------------------------------------------
_OLD_FIGURES_MARK = ".astrolatent-report"  # the mark of reports written before outputs.marks


def _fresh_figure_dir(path: Path) -> Path:
    """An empty ``figures`` folder beside the report ``path``: an earlier report's figures
    there are removed; a folder of that name that astrolatent did not write is refused. A
    report folder that does not exist yet is created and marked."""
    if not path.parent.exists():
        marks.claim(path.parent, "report", (path.name, "figures"), what="report folder")
    return marks.claim(
        path.parent / "figures",
        "figures",
        ("*.png", _OLD_FIGURES_MARK),
        legacy=lambda folder: (folder / _OLD_FIGURES_MARK).is_file(),
        what="the report's figures folder",
        fresh=True,
    )


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run; return the path of ``report.html``.

    Args:
        run_dir: a spectrum run (after ``astrolatent encode`` and ``analyze``) or a galaxy
            estimator run (``astrolatent galaxy train``).
        out: the HTML file (default ``RUN/report/report.html``); the figures go to
            ``figures/`` beside it.

    Raises:
        RunError: ``run_dir`` is not a run, or a spectrum run lacks its latents or its
            analysis (the message names the command to run).
        InputFileError: a summary the report needs is corrupt, of a newer format or lacks
            a key (an unreadable decomposition, local-test or discovery file is shown as a
            note instead).
        ConfigError: ``out`` is not an ``.html`` file name.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunError(
            f"{run_dir}: not a run directory (no {CONFIG_FILE}); make one with `astrolatent train` "
            "or `astrolatent galaxy train`"
        )
    path = Path(out) if out is not None else run_dir / REPORT_DIR / REPORT_FILE
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {path}: the report is an HTML file; give a name ending in .html")
    fig_dir = _fresh_figure_dir(path)
    figs = Figures(fig_dir)
    if (run_dir / PREDICTIONS_FILE).is_file():
        kind = "galaxy estimator run"
        sections = _galaxy_sections(run_dir, figs)
    else:
        kind = "spectrum run"
        sections = _spectrum_sections(run_dir, figs)
    sections += _extension_sections(run_dir, figs, exclude=path.parent)
    sections.append(provenance.provenance_section(run_dir, kind))
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = _PAGE.substitute(
        title=esc(f"astrolatent report: {run_dir.resolve().name}"),
        subtitle=f"<p>{esc(kind)}: {esc(run_dir.resolve())}</p><p>generated {esc(when)}</p>",
        css=_CSS,
        nav="".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections),
        sections="\n".join(s.html() for s in sections),
    )
    write_text_atomic(path, page)
    log.info("report written to %s (%d figures)", path, len(figs.names))
    return path


# ---------------------------------------------------------------------------------------
# the sections of each kind of run, in page order
# ---------------------------------------------------------------------------------------
def _spectrum_sections(run_dir: Path, figs: Figures) -> list[Section]:
    if not (run_dir / LATENTS_FILE).is_file():
        raise RunError(
            f"{run_dir}: no {LATENTS_FILE}; run `astrolatent encode {run_dir}` "
            f"then `astrolatent analyze {run_dir}` first"
        )
    analysis = run_dir / ANALYSIS_DIR
    summary = load_summary(run_dir)
    train = load_train_summary(run_dir) if (run_dir / TRAIN_SUMMARY_FILE).is_file() else None
    data = load_data_summary(run_dir) if (analysis / DATA_SUMMARY_FILE).is_file() else None
    sweeps = load_traversals(run_dir) if (analysis / TRAVERSALS_FILE).is_file() else None
    return [
        overview.summary_section(summary, train),
        overview.data_section(data),
        overview.training_section(run_dir, train, figs),
        dims.informative_section(summary, analysis, figs),
        mi.mi_section(summary, analysis, figs),
        mi.scatter_section(summary, analysis, figs),
        traversals.traversal_section(sweeps, analysis, figs),
        *audit.beyond_labels_section(summary, analysis, figs),
        traversals.disentanglement_section(summary),
        reconstructions.reconstruction_section(analysis, figs),
    ]


def _galaxy_sections(run_dir: Path, figs: Figures) -> list[Section]:
    summary = load_galaxy_summary(run_dir)
    return [
        galaxy.overview_section(summary),
        galaxy.metrics_section(summary),
        galaxy.predictions_section(run_dir, summary, figs),
    ]


def _extension_sections(run_dir: Path, figs: Figures, *, exclude: Path) -> list[Section]:
    def found(name: str) -> list[Path]:
        return sorted(p for p in run_dir.rglob(name) if exclude not in p.parents)

    def block(path: Path, load, render) -> str:
        try:
            return render(load(path), path.parent, path.parent.relative_to(run_dir), figs)
        except InputFileError as exc:  # one unreadable file does not stop the report
            return note(str(exc))

    sections = []
    for name, anchor, title, load, render in (
        (
            DECOMPOSITION_FILE,
            "decomposition",
            "MI decomposition",
            load_decomposition,
            causal.decomposition,
        ),
        (LOCAL_FILE, "local", "Local causal tests", load_local_tests, causal.local),
        (DISCOVERY_FILE, "discovery", "Causal discovery", load_discovery, causal.discovery),
    ):
        paths = found(name)
        if paths:
            body = "".join(block(p, load, render) for p in paths)
            sections.append(Section(anchor, title, body))
    return sections


__all__ = [
    "REPORT_DIR",
    "REPORT_FILE",
    "build_report",
    "describe_tracks",
    "dimension_labels",
    "fmt",
    "pm",
]
