"""Blocks of the report for the files any run may hold below it: every
``decomposition.json`` (``astrolatent galaxy decompose``), ``local.json``
(``astrolatent causal``) and ``discovery.json`` (``astrolatent discover``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from astrolatent.analysis.causal.local import summary_rows
from astrolatent.analysis.pid.base import ATOMS
from astrolatent.outputs.layout import GRAPH_FIGURE, LOCAL_FILE
from astrolatent.outputs.summaries import Decomposition, Discovery, LocalTests
from astrolatent.report.markup import Figures, esc, fmt, note, para, pm, table


def _folder_figures(folder: Path, figs: Figures, *, skip: Sequence[str] = ()) -> str:
    pngs = [p for p in sorted(folder.glob("*.png")) if p.name not in skip]
    if not pngs:
        return ""
    inner = "".join(figs.existing(p, p.name, name=f"{folder.name}_{p.stem}") for p in pngs)
    return (
        f"<details><summary>figures in {esc(folder.name)}/ ({len(pngs)})</summary>{inner}</details>"
    )


def _atoms_table(groups: list[tuple[str, dict]]) -> str:
    return table(
        ["group", "n", *ATOMS],
        [
            (g, row.get("n", "-"), *(pm(row.get(a), row.get(f"{a}_err")) for a in ATOMS))
            for g, row in groups
        ],
    )


def decomposition(d: Decomposition, folder: Path, rel: Path, figs: Figures) -> str:
    """A ``decomposition.json`` of ``astrolatent galaxy decompose`` (in ``folder``, ``rel``
    below the run), with the figures it lists."""
    name1, name2 = (", ".join(x) if isinstance(x, list) else str(x) for x in (d.x1, d.x2))
    body = f"<h3>{esc(rel)}: {esc(d.target)} from X1 = {esc(name1)} and X2 = {esc(name2)}</h3>"
    body += para(f"method {d.method}, n = {fmt(d.n)} objects; nats per object.")
    if d.method == "pointwise":
        body += note(
            "the pointwise minimum-MI measure (the 2025 study's) is biased: the mean of the "
            "per-object minima sits below the minimum of the mean MIs, so redundancy comes out "
            "low, unique information high and synergy negative (docs/results.md, canonical "
            "PID cases); the default measure mmi is not"
        )
    if d.note:
        body += note(d.note)
    raw = d.model_dump()
    overall = {**{k: raw.get(k) for a in ATOMS for k in (a, f"{a}_err")}, "n": d.n}
    by_class = [(str(g), row) for g, row in (d.by_class or {}).items()]
    body += _atoms_table([("all", overall), *by_class])
    for column, rows in d.by_bin.items():
        body += f"<h4>in bins of {esc(column)}</h4>"
        body += _atoms_table([(f"{fmt(r['low'])} to {fmt(r['high'])}", r) for r in rows])
    for name in d.figures.values():
        if name.endswith(".png"):
            body += figs.existing(folder / name, name, name=f"{folder.name}_{Path(name).stem}")
    return body


def local(d: LocalTests, folder: Path, rel: Path, figs: Figures) -> str:
    """A ``local.json`` of ``astrolatent causal`` (settings and the tests' summaries)."""
    body = f"<h3>{esc(rel)}</h3>"
    body += para(
        f"target {d.target}, query {d.query}"
        + (f", conditioning on {', '.join(d.condition)}" if d.condition else "")
        + f"; {fmt(d.n_evaluated)} objects, neighbourhoods of {fmt(d.n_neighbors)} "
        f"in S, alpha {fmt(d.alpha)}."
    )
    headers, rows = summary_rows(d.model_dump())
    body += table(headers, rows) if rows else note(f"{folder / LOCAL_FILE}: no test summaries")
    return body + _folder_figures(folder, figs)


def discovery(d: Discovery, folder: Path, rel: Path, figs: Figures) -> str:
    """A ``discovery.json`` of ``astrolatent discover`` (nodes, edges and their
    stability), with its graph and the folder's figures."""
    body = f"<h3>{esc(rel)}</h3>"
    body += para(f"method {d.method}; {len(d.nodes)} nodes: {', '.join(d.nodes)}")
    if d.edges:
        body += table(
            ["from", "to", "type", "stability"],
            [(e.source, e.to, e.type, e.stability) for e in d.edges],
        )
    else:
        body += para("no edges found")
    body += figs.existing(
        folder / GRAPH_FIGURE, "The discovered graph.", name=f"{folder.name}_graph"
    )
    return body + _folder_figures(folder, figs, skip=(GRAPH_FIGURE,))
