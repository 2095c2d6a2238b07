"""Reads a CTranslate2 `model.bin` into numpy arrays, without the ctranslate2 package.

Layout (little-endian): uint32 binary version; spec name (string); uint32 spec
revision; uint32 variable count; per variable: name (string), uint8 rank,
rank × uint32 dims, uint8 dtype id, uint32 byte count, the bytes; then uint32
alias count and (alias, target) string pairs. A string is a uint16 length
(including the trailing NUL) followed by the bytes. Versions before 4 stored an
item size instead of a dtype id; we only read the versions we have seen.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from subtone.service.errors import SubtoneError

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16, unsupported here
_SUPPORTED_VERSIONS = range(4, 7)


@dataclass(frozen=True)
class CT2Model:
    """The variables of one model; aliases resolved to the same array object."""

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def _read(fh: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise SubtoneError(f"{fh.name}: truncated CTranslate2 model (expected {size} more bytes)")
    return struct.unpack(fmt, data)


def _read_string(fh: BinaryIO) -> str:
    (length,) = _read(fh, "<H")
    raw = fh.read(length)
    if len(raw) != length:
        raise SubtoneError(f"{fh.name}: truncated CTranslate2 model (string)")
    return raw.rstrip(b"\0").decode("utf-8")


def read_model_bin(path: str | Path) -> CT2Model:
    """All variables of `path` as numpy arrays (dtype as stored: float16 weights stay float16)."""
    path = Path(path)
    with path.open("rb") as fh:
        (version,) = _read(fh, "<I")
        if version not in _SUPPORTED_VERSIONS:
            raise SubtoneError(
                f"{path}: CTranslate2 binary version {version} is not supported "
                f"(expected {_SUPPORTED_VERSIONS.start}..{_SUPPORTED_VERSIONS.stop - 1})"
            )
        spec = _read_string(fh)
        (revision,) = _read(fh, "<I")
        (count,) = _read(fh, "<I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = _read_string(fh)
            (rank,) = _read(fh, "<B")
            dims = _read(fh, f"<{rank}I") if rank else ()
            (dtype_id,) = _read(fh, "<B")
            (nbytes,) = _read(fh, "<I")
            if dtype_id >= len(_DTYPES) or _DTYPES[dtype_id] is None:
                raise SubtoneError(f"{path}: variable {name} has unsupported dtype id {dtype_id}")
            dtype = np.dtype(_DTYPES[dtype_id]).newbyteorder("<")
            raw = fh.read(nbytes)
            expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if len(raw) != nbytes or nbytes != expected:
                raise SubtoneError(f"{path}: variable {name} has {len(raw)} bytes, expected {expected}")
            variables[name] = np.frombuffer(raw, dtype=dtype).reshape(dims)
        (n_aliases,) = _read(fh, "<I")
        aliases: dict[str, str] = {}
        for _ in range(n_aliases):
            alias = _read_string(fh)
            aliases[alias] = _read_string(fh)
    for alias, target in aliases.items():
        if target not in variables:
            raise SubtoneError(f"{path}: alias {alias} points to unknown variable {target}")
        variables[alias] = variables[target]
    return CT2Model(spec=spec, revision=revision, binary_version=version, variables=variables, aliases=aliases)
