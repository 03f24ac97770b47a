"""Checksums of input files, computed from their bytes read once into a buffer kept per thread.

The store records the algorithm of its ``checksum`` column (attribute ``checksum_algorithm``;
absent in stores older than the attribute: SHA-256). The default, XXH3-128, is a 128-bit
non-cryptographic hash: it detects a changed file (``ingest --verify``) with a chance of
missing a change of 2**-128, and hashes at memory speed (0.07 ms for a 5 MB HARPS file
against 0.6 ms for BLAKE3 and 3 ms for SHA-256, docs/benchmarks.md "Ingestion speed").
It does not protect against someone forging a file with the same hash on purpose; choose
``blake3`` or ``sha256`` (``checksum_algorithm`` in the ingest configuration) for that.

Reading files is here too: :func:`read_file` (the kept buffer) and :class:`ReadAhead`,
which has the kernel read the next files of a task while one is processed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import blake3
import xxhash

from astrolatent.errors import InputFileError

#: name -> the hasher (called with the first bytes; ``update`` and ``hexdigest`` after)
ALGORITHMS: dict[str, Callable] = {
    "xxh3-128": xxhash.xxh3_128,
    "blake3": blake3.blake3,
    "sha256": hashlib.sha256,
}
DEFAULT = "xxh3-128"
#: Files up to this size are read whole into the kept buffer; larger ones (a big table) are
#: hashed block by block, so memory stays bounded by the task, not by the file.
WHOLE_FILE_BYTES = 64 * 1024**2
BLOCK_BYTES = 4 * 1024**2
#: the algorithm of a store that does not record one (written before the attribute existed)
UNRECORDED = "sha256"

_local = threading.local()


#: files whose reading the kernel is asked to start ahead of the one being processed
PREFETCH_FILES = 2


def prefetch(path: str | Path) -> None:
    """Ask the kernel to start reading a file into the page cache now, without waiting
    (``POSIX_FADV_WILLNEED``), so that its disk reads overlap the work on the files before
    it (docs/benchmarks.md, "Third round"). Nothing where the call does not exist (macOS,
    Windows) or the file cannot be opened (its own read reports that).
    """
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


class ReadAhead:
    """Keeps the kernel reading the next :data:`PREFETCH_FILES` files of a list ahead of
    the one being processed (a file named by several spectra counts once)."""

    def __init__(self, paths: list[str]) -> None:
        self.files = list(dict.fromkeys(paths))
        self.position = {path: k for k, path in enumerate(self.files)}
        self.asked = 0

    def at(self, path: str) -> None:
        """``path`` is being read now: ask for the files after it that are not asked for yet."""
        upto = min(self.position[path] + 1 + PREFETCH_FILES, len(self.files))
        for ahead in self.files[self.asked : upto]:
            prefetch(ahead)
        self.asked = max(self.asked, upto)


def read_file(path: str | Path) -> memoryview:
    """All bytes of a file, in a buffer kept per thread (valid until this thread's next call).

    Reading into one kept buffer costs less than mapping the file or reading into new
    memory, whose first touch is as expensive as the copy (docs/benchmarks.md).
    """
    try:
        with open(path, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            while True:
                buf = getattr(_local, "buffer", None)
                if buf is None or len(buf) <= size:
                    buf = _local.buffer = bytearray(max(size + 1, BLOCK_BYTES))
                view, n = memoryview(buf), 0
                while k := fh.readinto(view[n:]):
                    n += k
                if n < len(buf):  # the end of the file was reached
                    return view[:n]
                size, _ = 2 * len(buf), fh.seek(0)  # it grew while being read: again
    except OSError as exc:
        raise InputFileError(path, f"cannot read file ({exc.strerror})") from None


def digest(data: memoryview | bytes, algorithm: str) -> str:
    """Hex digest of ``data`` with a name of :data:`ALGORITHMS`."""
    return ALGORITHMS[algorithm](data).hexdigest()


def file_checksum(path: str | Path, algorithm: str = DEFAULT) -> str:
    """Hex digest of a file's bytes, read in blocks into the kept buffer."""
    hasher = ALGORITHMS[algorithm]()
    try:
        with open(path, "rb", buffering=0) as fh:
            buf = getattr(_local, "buffer", None)
            if buf is None:
                buf = _local.buffer = bytearray(BLOCK_BYTES)
            view = memoryview(buf)[:BLOCK_BYTES]
            while n := fh.readinto(view):
                hasher.update(view[:n])
    except OSError as exc:
        raise InputFileError(path, f"cannot read file ({exc.strerror})") from None
    return hasher.hexdigest()
