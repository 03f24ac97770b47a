"""write_rows: the store's chunk files written directly read back through zarr exactly."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from astrolatent.data.store import _write_chunk_files, write_rows


def _arrays(path, n_rows: int, chunk_rows: int, separator: str = "/", **extra):
    group = zarr.open_group(str(path), mode="w")
    for name, dtype, shuffle in (("flux", "float32", "bitshuffle"), ("valid", bool, "shuffle")):
        group.create_array(
            name,
            shape=(n_rows, 50),
            chunks=(chunk_rows, 50),
            dtype=dtype,
            compressors=extra.get("compressors", BloscCodec(cname="lz4", shuffle=shuffle)),
            fill_value=0,
            chunk_key_encoding={"name": "default", "separator": separator},
        )
    return group


def _blocks(n_rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    flux = rng.normal(size=(n_rows, 50)).astype(np.float32)
    flux[1] = 0.0  # an all-fill row is written too
    return {"flux": flux, "valid": flux > 0}


@pytest.mark.parametrize(("chunk_rows", "separator"), [(1, "/"), (4, "/"), (1, "."), (4, ".")])
def test_direct_chunk_files_equal_zarr_writes(tmp_path, chunk_rows, separator):
    n_rows = 10  # with 4-row chunks the last chunk is partial
    data = _blocks(n_rows, 0)
    direct = _arrays(tmp_path / "d", n_rows, chunk_rows, separator)
    plain = _arrays(tmp_path / "z", n_rows, 4)
    for row0 in range(0, n_rows, 4 if chunk_rows == 4 else 3):
        block = {k: v[row0 : row0 + (4 if chunk_rows == 4 else 3)] for k, v in data.items()}
        assert _write_chunk_files(direct["flux"], row0, block["flux"])  # the direct path is taken
        write_rows(direct, row0, {"valid": block["valid"]})
    for k, v in data.items():
        plain[k][:] = v
    reopened = zarr.open_group(str(tmp_path / "d"), mode="r")
    for name in data:
        np.testing.assert_array_equal(reopened[name][:], data[name])
        np.testing.assert_array_equal(reopened[name][:], plain[name][:])
    # the partial last chunk, stored padded to full size, decodes to its own rows
    np.testing.assert_array_equal(reopened["flux"][8:], data["flux"][8:])
    first = "c/0/0" if separator == "/" else "c.0.0"
    assert (tmp_path / "d" / "flux" / first).is_file()


def test_other_layouts_go_through_zarr(tmp_path):
    group = _arrays(tmp_path / "s", 6, 2, compressors=ZstdCodec(level=1))
    data = _blocks(6, 1)
    assert not _write_chunk_files(group["flux"], 0, data["flux"][:2])  # not Blosc
    blosc = _arrays(tmp_path / "b", 6, 2)
    assert not _write_chunk_files(blosc["flux"], 1, data["flux"][1:3])  # not on a chunk start
    assert not _write_chunk_files(blosc["flux"], 0, data["flux"][:2].astype(np.float64))
    write_rows(group, 0, data)
    write_rows(blosc, 0, data)
    for g in (group, blosc):
        np.testing.assert_array_equal(g["flux"][:], data["flux"])
        np.testing.assert_array_equal(g["valid"][:], data["valid"])
