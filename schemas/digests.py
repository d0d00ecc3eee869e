"""Hex digests and random ids for whole Arrow columns, spelled without a Python string per row.

A million-row export needs a million content hashes at the door, a million record ids and a
million fingerprints in the worker. Hashing each value through ``to_pylist`` and ``hexdigest``
made a Python string on the way in and another on the way out; here the values are hashed
straight from the Arrow buffer and numpy spells every digest into one fixed-width column.
The results are exactly those of ``hashlib.sha256(text.encode()).hexdigest()`` and
``os.urandom(16).hex()``.
"""

from __future__ import annotations

import hashlib
import os
from itertools import pairwise

import numpy as np
import pyarrow as pa

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


def sha256_hex(texts: pa.Array) -> pa.Array:
    """sha256 in hex of each UTF-8 value of a string array (a null hashes as the empty string)."""
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, len(texts) + 1, texts.offset * 4).tolist()
    data = memoryview(data_buffer if data_buffer is not None else b"")
    sha256 = hashlib.sha256
    return _spelled(b"".join([sha256(data[a:b]).digest() for a, b in pairwise(offsets)]), sha256().digest_size)


def random_hex(rows: int, size: int = 16) -> pa.Array:
    """``rows`` fresh random ids of ``size`` bytes from the operating system, each in hex."""
    return _spelled(os.urandom(rows * size), size)
