"""Blocks of the report for the files any run may hold below it: every
``decomposition.json`` (``astrolatent galaxy decompose``), ``local.json``
(``astrolatent causal``) and ``discovery.json`` (``astrolatent discover``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from astrolatent.analysis.causal.local import summary_rows
from astrolatent.analysis.pid.base import ATOMS
from astrolatent.report.markup import Figures, esc, fmt, note, para, pm, read_json, table


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


def decomposition(path: Path, run_dir: Path, figs: Figures) -> str:
    """A ``decomposition.json`` of ``astrolatent galaxy decompose`` (the shape of
    :meth:`RunDecomposition.to_dict`), with the figures it lists."""
    d = read_json(path)
    missing = [k for k in ATOMS if k not in d]
    if missing:
        return note(f"{path}: lacks {missing}; not a decomposition.json of the contract shape")
    rel = path.parent.relative_to(run_dir)
    name1, name2 = (
        ", ".join(x) if isinstance(x, list) else str(x) for x in (d.get("x1"), d.get("x2"))
    )
    body = (
        f"<h3>{esc(rel)}: {esc(d.get('target'))} from X1 = {esc(name1)} and X2 = {esc(name2)}</h3>"
    )
    body += para(f"method {d.get('method')}, n = {fmt(d.get('n'))} objects; nats per object.")
    if d.get("method") == "pointwise":
        body += note(
            "the pointwise minimum-MI measure (the 2025 study's) is biased: the mean of the "
            "per-object minima sits below the minimum of the mean MIs, so redundancy comes out "
            "low, unique information high and synergy negative (docs/results.md, canonical "
            "PID cases); the default measure mmi is not"
        )
    if d.get("note"):
        body += note(str(d["note"]))
    overall = {**{k: d.get(k) for a in ATOMS for k in (a, f"{a}_err")}, "n": d.get("n")}
    by_class = [(str(g), row) for g, row in (d.get("by_class") or {}).items()]
    body += _atoms_table([("all", overall), *by_class])
    for column, rows in (d.get("by_bin") or {}).items():
        body += f"<h4>in bins of {esc(column)}</h4>"
        body += _atoms_table([(f"{fmt(r['low'])} to {fmt(r['high'])}", r) for r in rows])
    for name in (d.get("figures") or {}).values():
        if str(name).endswith(".png"):
            body += figs.existing(
                path.parent / name, name, name=f"{path.parent.name}_{Path(name).stem}"
            )
    return body


def local(path: Path, run_dir: Path, figs: Figures) -> str:
    """A ``local.json`` of ``astrolatent causal`` (settings and the tests' summaries)."""
    d = read_json(path)
    rel = path.parent.relative_to(run_dir)
    body = f"<h3>{esc(rel)}</h3>"
    body += para(
        f"target {d.get('target')}, query {d.get('query')}"
        + (f", conditioning on {', '.join(d['condition'])}" if d.get("condition") else "")
        + f"; {fmt(d.get('n_evaluated'))} objects, neighbourhoods of {fmt(d.get('n_neighbors'))} "
        f"in S, alpha {fmt(d.get('alpha'))}."
    )
    headers, rows = summary_rows(d)
    body += table(headers, rows) if rows else note(f"{path}: no test summaries")
    return body + _folder_figures(path.parent, figs)


def discovery(path: Path, run_dir: Path, figs: Figures) -> str:
    """A ``discovery.json`` of ``astrolatent discover`` (nodes, edges and their
    stability), with its graph and the folder's figures."""
    d = read_json(path)
    rel = path.parent.relative_to(run_dir)
    body = f"<h3>{esc(rel)}</h3>"
    body += para(
        f"method {d.get('method')}; {len(d.get('nodes', []))} nodes: {', '.join(map(str, d.get('nodes', [])))}"
    )
    edges = d.get("edges", [])
    if edges:
        body += table(
            ["from", "to", "type", "stability"],
            [(e.get("from"), e.get("to"), e.get("type"), e.get("stability")) for e in edges],
        )
    else:
        body += para("no edges found")
    body += figs.existing(
        path.parent / "graph.png", "The discovered graph.", name=f"{path.parent.name}_graph"
    )
    return body + _folder_figures(path.parent, figs, skip=("graph.png",))
