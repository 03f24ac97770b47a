"""The marker every folder astrolatent creates holds, and the only way astrolatent removes files.

Rule: astrolatent writes into a folder only if it created it (its marker is written first,
before anything else), the folder is empty, or it is already astrolatent's; it removes only
files and folders of a marked folder that match the names the caller declares as its own
(``owns``: glob patterns such as ``"*.fits"``), and never touches any other file. A folder
that exists, holds something and carries no marker is refused with
:class:`~astrolatent.errors.OutputFolderError` (exit code 6), naming the folder.

The marker is ``FOLDER/.astrolatent.json``: ``{"astrolatent": "output folder", "kind": ...,
"owns": [...], "version": ...}``. A spectrum store whose ``zarr.json`` is a valid Zarr v3
group counts as marked (stores written before markers existed); for other kinds written
before markers, callers pass a ``legacy`` test that recognises astrolatent's own files (e.g.
a run's ``config.yaml`` that loads as a training configuration).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from astrolatent import __version__
from astrolatent.errors import AstrolatentError, OutputFolderError
from astrolatent.outputs.io import write_text_atomic
from astrolatent.outputs.layout import STORE_GROUP_FILE

log = logging.getLogger(__name__)

MARK_FILE = ".astrolatent.json"
_TAG = "output folder"
#: temporary files of atomic writes (``name.tmp``, ``.name.tmp``): always ours in a marked folder
_TEMPORARY = ("*.tmp", ".*.tmp")


def read_mark(folder: str | Path) -> dict | None:
    """The marker of ``folder`` (a dict with ``kind`` and ``owns``), or None if it has none."""
    try:
        mark = json.loads((Path(folder) / MARK_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(mark, dict) or mark.get("astrolatent") != _TAG:
        return None
    return mark


def is_zarr_group(folder: str | Path) -> bool:
    """True if ``folder/zarr.json`` is the metadata of a Zarr v3 group (a store's mark)."""
    try:
        meta = json.loads((Path(folder) / STORE_GROUP_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict) and meta.get("zarr_format") == 3 and meta.get("node_type") == "group"
    )


def is_marked(folder: str | Path) -> bool:
    """True if ``folder`` holds astrolatent's marker or is a Zarr store."""
    return read_mark(folder) is not None or is_zarr_group(folder)


def claim(
    folder: str | Path,
    kind: str,
    owns: Iterable[str],
    *,
    legacy: Callable[[Path], bool] | None = None,
    what: str = "output folder",
    fresh: bool = False,
) -> Path:
    """Make ``folder`` an astrolatent folder of ``kind`` that may hold the files ``owns``
    (``fresh``: then :func:`clear` it, keeping any files of the user's).

    A missing folder is created (parents too) and marked before anything is written into
    it; an empty folder, a marked one, a Zarr store or one that ``legacy`` recognises is
    marked (or its marker extended with ``owns``). Anything else raises OutputFolderError.

    Args:
        folder: the folder.
        kind: what it holds (``"store"``, ``"run"``, ``"analysis"``, ...), recorded in the mark.
        owns: glob patterns of the names astrolatent writes there (all it may ever remove).
        legacy: recognises a folder written by astrolatent before markers existed.
        what: how error messages call the folder (e.g. ``"--store"``).
    """
    folder = Path(folder)
    owns = sorted(set(owns))
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(folder, f"{what} is a file, not a folder; choose a folder path")
    mark = read_mark(folder) if folder.is_dir() else None
    if mark is None and folder.is_dir() and any(p.name != MARK_FILE for p in folder.iterdir()):
        if not (is_zarr_group(folder) or (legacy is not None and legacy(folder))):
            raise OutputFolderError(
                folder,
                f"{what} exists, is not empty and was not written by astrolatent; "
                "nothing was changed: choose a new or empty folder",
            )
    if mark is not None and mark.get("kind") != kind:
        raise OutputFolderError(
            folder,
            f"{what} holds an astrolatent {mark.get('kind')}, not a {kind}; choose another folder",
        )
    if mark is None or not set(owns) <= set(mark.get("owns", [])):
        old = [] if mark is None else list(mark.get("owns", []))
        _write_mark(folder, kind, sorted({*old, *owns}))
    above = read_mark(folder.parent)
    if above is not None and above.get("kind") == "folder" and folder.name not in above["owns"]:
        _write_mark(folder.parent, "folder", sorted({*above["owns"], folder.name}))
    if fresh:
        clear(folder)
    return folder


def loads(load: Callable[[Path], object], name: str) -> Callable[[Path], bool]:
    """A ``legacy`` test for :func:`claim`: the folder's file ``name`` loads with ``load``
    (e.g. a run's ``config.yaml`` as a training configuration)."""

    def recognised(folder: Path) -> bool:
        try:
            load(folder / name)
        except (AstrolatentError, OSError):
            return False
        return True

    return recognised


def _write_mark(folder: Path, kind: str, owns: list[str]) -> None:
    _make_parents(folder)
    folder.mkdir(exist_ok=True)
    payload = {"astrolatent": _TAG, "kind": kind, "owns": owns, "version": __version__}
    write_text_atomic(folder / MARK_FILE, json.dumps(payload, indent=2) + "\n")


def output_file(path: str | Path, *, what: str = "--out") -> Path:
    """Check that ``path`` can be written as a file; create its folder (marked) if missing.

    Raises OutputFolderError if ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputFolderError(path, f"{what} is a folder; give a file name")
    if not path.parent.exists():
        claim(path.parent, "outputs", (path.name,), what=f"the folder of {what}")
    return path


def _make_parents(folder: Path) -> None:
    """Create the missing parents of ``folder``, each marked (kind ``folder``) as holding
    only the next folder down."""
    missing = [p for p in folder.absolute().parents if not p.exists()]
    for parent in reversed(missing):
        child = folder.absolute().relative_to(parent).parts[0]
        _write_mark(parent, "folder", [child])


def owned_entries(folder: str | Path) -> list[Path]:
    """The entries of a marked ``folder`` whose names match its marker's ``owns`` (sorted)."""
    folder = Path(folder)
    mark = read_mark(folder)
    if mark is None:
        raise OutputFolderError(folder, "holds no astrolatent marker; nothing was removed")
    patterns = [*mark.get("owns", []), *_TEMPORARY]
    return sorted(
        p
        for p in folder.iterdir()
        if p.name != MARK_FILE and any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)
    )


def clear(folder: str | Path) -> list[Path]:
    """Remove what astrolatent wrote in a marked ``folder`` (keeping the folder and its mark).

    An owned sub-folder with its own marker is cleared the same way (and removed when
    nothing else is left in it); an owned sub-folder without one (a Zarr array, the
    checkpoints) is astrolatent's as a whole. Returns the removed paths.
    """
    removed = []
    for entry in owned_entries(folder):
        if entry.is_dir() and not entry.is_symlink():
            if read_mark(entry) is not None:
                remove(entry)
            else:
                shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    log.debug("cleared %d entries of %s", len(removed), folder)
    return removed


def remove(folder: str | Path) -> bool:
    """Clear a marked ``folder``, then delete it if nothing of the user's is left in it.

    Returns True if the folder is gone; a folder that still holds other files keeps them and
    its mark (a warning names it).
    """
    folder = Path(folder)
    clear(folder)
    if any(p.name != MARK_FILE for p in folder.iterdir()):
        log.warning("%s holds files astrolatent did not write; they were kept", folder)
        return False
    (folder / MARK_FILE).unlink()
    folder.rmdir()
    return True


__all__ = [
    "MARK_FILE",
    "claim",
    "clear",
    "is_marked",
    "is_zarr_group",
    "loads",
    "output_file",
    "owned_entries",
    "read_mark",
    "remove",
]
