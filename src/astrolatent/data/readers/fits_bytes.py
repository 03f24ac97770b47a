"""Row 0 of a binary table in extension 1, parsed from the file's bytes already in memory.

Ingestion reads every file once into a buffer (to hash it), so parsing the same bytes saves
a second read: only the header cards asked for are looked up (a search for the keyword at
a card boundary, the value parsed then), and the cells are NumPy views of the row at the
offsets the ``TFORMn`` widths give, in the file's big-endian byte order, without a copy.
This is our own reader of that one layout, used because it is measurably cheaper than
astropy and CFITSIO on HARPS files (docs/benchmarks.md, "Ingestion speed"). Anything else
(compressed files, scaled or flagged columns, variable-length arrays, a truncated file, a
continued string value, a value this parser does not read) gives None, and the caller reads
the file with astropy, which stays the reference and words the errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

BLOCK = 2880
CARD = 80
#: bytes per element of each TFORM type code (X, bits, is handled apart)
_WIDTH = {"L": 1, "B": 1, "I": 2, "J": 4, "K": 8, "A": 1, "E": 4, "D": 8, "C": 8, "M": 16}
#: element types read as numbers (big-endian, as FITS stores them)
_DTYPE = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM = re.compile(r"\s*(\d*)([A-Z])")
_STRING = re.compile(r"'((?:[^']|'')*)'")


class Cards:
    """A FITS header's card values, looked up and parsed when asked for (the first card of
    a keyword, as astropy gives); raises ValueError for a value it does not read."""

    def __init__(self, text: bytes) -> None:
        self.text = text

    def _raw(self, key: str) -> bytes | None:
        pattern = key.encode("ascii").ljust(8) + b"= "
        at = self.text.find(pattern)
        while at >= 0 and at % CARD:
            at = self.text.find(pattern, at + 1)
        return None if at < 0 else self.text[at + 10 : at + CARD]

    def __contains__(self, key: str) -> bool:
        return self._raw(key) is not None

    def __getitem__(self, key: str) -> object:
        raw = self._raw(key)
        if raw is None:
            raise KeyError(key)
        return _value(raw.decode("ascii"))

    def get(self, key: str, default: object = None) -> object:
        return default if key not in self else self[key]


def _value(text: str) -> object:
    """A card's value: a string (trailing blanks dropped), bool, int, float or None."""
    text = text.lstrip()
    if text.startswith("'"):
        match = _STRING.match(text)
        if match is None:
            raise ValueError("unterminated string")
        value = match[1].replace("''", "'").rstrip()
        if value.endswith("&"):
            raise ValueError("a string continued on CONTINUE cards")
        return value
    body = text.split("/", 1)[0].strip()
    if body in ("T", "F"):
        return body == "T"
    if not body:
        return None
    try:
        return int(body)
    except ValueError:
        return float(body.replace("D", "E"))


@dataclass
class Row:
    """Cells of row 0 of extension 1 (views of the file's bytes), their units and the
    primary header."""

    cells: dict[str, np.ndarray]
    units: dict[str, str | None]
    primary: Cards


def read_row(data: memoryview, required: set[str], optional: set[str] = frozenset()) -> Row | None:
    """Row 0 of extension 1 from a file's bytes: the columns ``required`` (all present) and
    those of ``optional`` that exist, keyed by upper-cased name; None when the layout is
    anything but a plain binary table with numeric cells for them."""
    try:
        parsed = _headers(data)
        if parsed is None:
            return None
        primary, table, start = parsed
        return _cells(data, primary, table, start, required, optional)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # astropy reads it and says what is wrong


def _headers(data: memoryview) -> tuple[Cards, Cards, int] | None:
    """The primary and extension-1 headers and the offset of the extension's data."""
    if bytes(data[:9]) != b"SIMPLE  =":
        return None  # compressed, or not FITS
    primary, end = _header(data, 0)
    if primary is None or primary.get("GROUPS"):
        return None
    ext, start = _header(data, end + _padded(_data_size(primary)))
    if ext is None or str(ext.get("XTENSION", "")).strip() != "BINTABLE" or "ZIMAGE" in ext:
        return None
    return primary, ext, start


def _header(data: memoryview, start: int) -> tuple[Cards | None, int]:
    """The header starting at byte ``start`` and the offset just past it (None, 0 when there
    is no END card)."""
    pos = start
    while pos + BLOCK <= len(data):
        block = bytes(data[pos : pos + BLOCK])
        pos += BLOCK
        at = block.find(b"END     ")
        while at >= 0 and at % CARD:
            at = block.find(b"END     ", at + 1)
        if at >= 0:
            return Cards(bytes(data[start : pos - BLOCK + at])), pos
    return None, 0


def _data_size(header: Cards) -> int:
    naxis = int(header["NAXIS"])
    if naxis == 0:
        return 0
    pixels = int(np.prod([int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]))
    count = int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + pixels)
    return abs(int(header["BITPIX"])) // 8 * count


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _cells(
    data: memoryview,
    primary: Cards,
    table: Cards,
    start: int,
    required: set[str],
    optional: set[str],
) -> Row | None:
    if int(table["NAXIS"]) != 2 or int(table["NAXIS2"]) < 1:
        return None
    columns: dict[str, tuple[int, int, str, int]] = {}  # name -> (number, offset, code, repeat)
    twice: set[str] = set()  # names that differ in case only: astropy's choice
    offset = 0
    for number in range(1, int(table["TFIELDS"]) + 1):
        match = _TFORM.match(str(table[f"TFORM{number}"]))
        if match is None:
            return None
        repeat, code = int(match[1] or 1), match[2]
        if code in "PQ":  # array descriptors: the data sit in the heap
            width = 8 if code == "P" else 16
        elif code == "X":
            width = -(-repeat // 8)
        elif code in _WIDTH:
            width = repeat * _WIDTH[code]
        else:
            return None
        name = str(table.get(f"TTYPE{number}", "")).strip().upper()
        if name in columns:
            twice.add(name)
        elif name:
            columns[name] = (number, offset, code, repeat)
        offset += width
    row_bytes = int(table["NAXIS1"])
    if start + _padded(_data_size(table)) > len(data):
        return None  # truncated: astropy says so
    if offset != row_bytes or not required <= set(columns):
        return None
    wanted = required | (optional & set(columns))
    if wanted & twice:
        return None
    cells, units = {}, {}
    for name in sorted(wanted):
        number, at, code, repeat = columns[name]
        scaled = any(f"{key}{number}" in table for key in ("TSCAL", "TZERO", "TNULL"))
        if scaled or code not in _DTYPE:
            return None  # scaled or flagged integers, text, bits: astropy's handling
        cells[name] = np.frombuffer(data, _DTYPE[code], count=repeat, offset=start + at)
        unit = table.get(f"TUNIT{number}")
        units[name] = None if unit is None else str(unit)
    return Row(cells=cells, units=units, primary=primary)
