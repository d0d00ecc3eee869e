"""Digests, hex numbers and random ids for whole Arrow columns, without a Python string per row.

A million-row export needs a million content hashes at the door, a million record ids, and in
the worker a million fingerprints and record keys. Hashing each value through ``to_pylist`` and
``hexdigest`` made a Python string on the way in and another on the way out; here the values are
hashed straight from the Arrow buffer, and numpy reads and spells hex for the whole column. The
results are exactly those of ``hashlib.sha256(text.encode()).hexdigest()``, ``os.urandom(16).hex()``,
``int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")`` and ``f"{n:016x}"``.
"""

from __future__ import annotations

import hashlib
import os
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def ascii_strings(matrix: np.ndarray) -> pa.Array:
    """A string column from a matrix of ASCII bytes, one value per row."""
    rows, width = matrix.shape
    ends = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(ends), pa.py_buffer(np.ascontiguousarray(matrix)))


def _spelled(digests: bytes, size: int) -> pa.Array:
    """Each ``size`` bytes of ``digests`` as one value, in lowercase hex."""
    values = np.frombuffer(digests, np.uint8)
    spelled = np.empty((len(values) // size, 2 * size), np.uint8)
    spelled[:, 0::2], spelled[:, 1::2] = (_HEX[half].reshape(-1, size) for half in (values >> 4, values & 15))
    return ascii_strings(spelled)


def _array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    return texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts


def _values(texts: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """The UTF-8 bytes of each value of a string column (a null as no bytes).

    Slices of one copy of the data buffer: a ``memoryview`` slice per value took four times as long.
    """
    texts = _array(texts)
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, len(texts) + 1, texts.offset * 4).tolist()
    data = data_buffer.to_pybytes() if data_buffer is not None else b""
    return [data[a:b] for a, b in pairwise(offsets)]


def sha256_hex(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """sha256 in hex of each UTF-8 value of a string column (a null hashes as the empty string)."""
    sha256 = hashlib.sha256
    return _spelled(b"".join([sha256(value).digest() for value in _values(texts)]), sha256().digest_size)


def blake2b_64(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The 8-byte blake2b of each UTF-8 value of a string column, read big-endian (a null hashes as empty)."""
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(value, digest_size=8).digest() for value in _values(texts)])
    return np.frombuffer(digests, ">u8").astype(np.uint64)


_HEX_VALUE = np.full(256, 255, np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def leading_hex(texts: pa.Array | pa.ChunkedArray, digits: int = 16) -> np.ndarray:
    """The number the first ``digits`` (at most 16) hex digits of each value spell; 0 where they are not all hex.

    A null, a shorter value, or any other character among the first ``digits`` gives 0.
    """
    texts = _array(texts)
    if not len(texts):
        return np.zeros(0, np.uint64)
    head = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, digits)
    padded = pc.if_else(pc.equal(pc.binary_length(head), digits), head, "0" * digits)
    _, offsets, data = padded.buffers()
    start = int(np.frombuffer(offsets, np.int32, 1, padded.offset * 4)[0])
    nibbles = _HEX_VALUE[np.frombuffer(data, np.uint8, len(padded) * digits, start).reshape(-1, digits)]
    values = np.zeros(len(padded), np.uint64)
    for place in range(digits):
        values = (values << np.uint64(4)) | nibbles[:, place].astype(np.uint64)
    values[(nibbles == 255).any(axis=1)] = 0
    return values


def uint64_hex(values: np.ndarray) -> pa.Array:
    """Each number as 16 lowercase hex digits."""
    return _spelled(np.asarray(values, ">u8").tobytes(), 8)


def random_hex(rows: int, size: int = 16) -> pa.Array:
    """``rows`` fresh random ids of ``size`` bytes from the operating system, each in hex."""
    return _spelled(os.urandom(rows * size), size)
