"""Joining a label table to the stored spectra on an id column, with a full report."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from astrolatent.data.store import RESERVED_COLUMNS
from astrolatent.errors import LabelError
from astrolatent.tables import describe_non_numeric, mixed_columns, read_table

log = logging.getLogger(__name__)

_SHOW = 20


def load_labels(path: str | Path, id_column: str) -> pd.DataFrame:
    """Read a label table and index it by ``id_column`` (ids as stripped strings)."""
    frame = read_table(path, text_columns=[id_column])
    if id_column not in frame.columns:
        raise LabelError(
            f"{path}: id column {id_column!r} not found (columns: {', '.join(map(str, frame.columns))})"
        )
    ids = frame[id_column].astype(str).str.strip()
    blank = np.flatnonzero((ids == "").to_numpy() | frame[id_column].isna().to_numpy())
    if blank.size:
        rows = ", ".join(str(i + 1) for i in blank[:5])
        raise LabelError(
            f"{path}: {blank.size} row(s) have a blank {id_column!r}, e.g. data row(s) {rows}"
        )
    for col, bad in mixed_columns(frame.drop(columns=[id_column])).items():
        log.warning(
            "%s: label column %r %s; they are read as missing (clean the table to keep them)",
            path,
            col,
            describe_non_numeric(bad),
        )
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise LabelError(
            f"{path}: {dup.nunique()} id(s) appear more than once, e.g. {', '.join(dup.unique()[:5])}"
        )
    frame = frame.drop(columns=[id_column])
    frame.index = pd.Index(ids, name="id")
    return frame


def join_labels(
    meta: pd.DataFrame, labels: pd.DataFrame, *, source: str
) -> tuple[pd.DataFrame, dict]:
    """Left-join labels onto the metadata by id; report what did not match.

    Label columns whose names the metadata already uses (``object``, ``snr``, ...) are
    renamed ``<name>_label``. Returns the joined table and a report with ``n_label_rows``,
    ``n_matched``, ``unknown_ids`` (labels whose id is not a stored spectrum),
    ``unlabelled`` (accepted spectra with no label row) and ``renamed``; the id lists are
    cut at 20 with their full counts given.
    """
    renamed = {
        c: f"{c}_label" for c in labels.columns if c in meta.columns or c in RESERVED_COLUMNS
    }
    taken = [new for new in renamed.values() if new in meta.columns or new in labels.columns]
    if taken:
        raise LabelError(
            f"{source}: cannot rename clashing label column(s): {', '.join(taken)} exist already"
        )
    labels = labels.rename(columns=renamed)
    ids = meta["id"].astype(str)
    known = set(ids)
    unknown = [i for i in labels.index if i not in known]
    joined = meta.join(labels, on="id")
    ok = meta["status"] == "ok"
    has = ids.isin(labels.index)
    unlabelled = ids[ok & ~has].tolist()
    report = {
        "source": source,
        "n_label_rows": len(labels),
        "n_matched": int((ok & has).sum()),
        "n_unknown_ids": len(unknown),
        "unknown_ids": unknown[:_SHOW],
        "n_unlabelled": len(unlabelled),
        "unlabelled": unlabelled[:_SHOW],
        "renamed": renamed,
    }
    return joined, report
