"""The report's small HTML pieces: escaping, numbers as the report prints them, tables,
notes, the figure embedder and the section block.

Every value goes through :func:`esc` (``html.escape``).
"""

from __future__ import annotations

import base64
import html
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import yaml

from astrolatent import figures
from astrolatent.outputs.layout import CONFIG_FILE


def esc(value: object) -> str:
    """Any value as HTML-escaped text (quotes too)."""
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


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table: ``headers``, then one row per sequence of ``rows``; numbers are
    formatted by :func:`fmt` and right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, int | float | np.integer | np.floating) and not isinstance(
                cell, bool
            )
            text = fmt(cell) if numeric or cell is None else str(cell)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table of (quantity, value) ``pairs``."""
    return table(["quantity", "value"], pairs)


def note(text: str) -> str:
    """``text`` as a highlighted note."""
    return f'<p class="note">{esc(text)}</p>'


def para(text: str) -> str:
    """``text`` as a paragraph."""
    return f"<p>{esc(text)}</p>"


def pre(text: str) -> str:
    """``text`` as preformatted text (configuration files, commands)."""
    return f"<pre>{esc(text)}</pre>"


def analysis_alpha(analysis: Path) -> float:
    """The significance level of the analysis in the folder ``analysis`` (its
    ``config.yaml``; 0.05 without one)."""
    path = analysis / CONFIG_FILE
    if path.is_file():
        return float((yaml.safe_load(path.read_text()) or {}).get("alpha", 0.05))
    return 0.05


class Figures:
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
            f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
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


class Section:
    """One ``<section>`` of the page: its ``anchor`` (the link in the navigation bar),
    its ``title`` and its HTML ``body``."""

    def __init__(self, anchor: str, title: str, body: str) -> None:
        self.anchor, self.title, self.body = anchor, title, body

    def html(self) -> str:
        return f'<section id="{esc(self.anchor)}"><h2>{esc(self.title)}</h2>{self.body}</section>'
