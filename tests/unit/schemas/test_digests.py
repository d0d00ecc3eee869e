"""Column-wise digests and ids are exactly what hashlib and os.urandom give one value at a time."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa

from schemas.digests import ascii_strings, random_hex, sha256_hex

TEXTS = ["", "a", "张三 · 东街 7 号", '\x00\n\t"\\', "x" * 5000, "𠀀 emoji 🙂"]


def test_each_value_hashes_as_hashlib_hashes_its_utf8() -> None:
    expected = [hashlib.sha256(text.encode()).hexdigest() for text in TEXTS]

    assert sha256_hex(pa.array(TEXTS, pa.string())).to_pylist() == expected


def test_a_slice_hashes_its_own_values_not_those_before_it() -> None:
    column = pa.array(["before", *TEXTS], pa.string()).slice(1)

    assert sha256_hex(column).to_pylist() == [hashlib.sha256(text.encode()).hexdigest() for text in TEXTS]


def test_no_values_give_no_digests() -> None:
    assert sha256_hex(pa.array([], pa.string())).to_pylist() == []
    assert random_hex(0).to_pylist() == []


def test_random_ids_are_32_lowercase_hex_digits_and_distinct() -> None:
    ids = random_hex(50_000).to_pylist()

    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_a_matrix_of_ascii_bytes_becomes_one_string_per_row() -> None:
    matrix = np.frombuffer(b"ab12cd34", np.uint8).reshape(2, 4)

    assert ascii_strings(matrix).to_pylist() == ["ab12", "cd34"]
