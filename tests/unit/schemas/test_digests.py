"""Column-wise digests and ids are exactly what hashlib and os.urandom give one value at a time."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa

from schemas.digests import ascii_strings, blake2b_64, leading_hex, random_hex, sha256_hex, uint64_hex

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


def test_each_value_gets_the_big_endian_number_of_its_8_byte_blake2b() -> None:
    expected = [int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") for text in TEXTS]

    assert blake2b_64(pa.array(["before", *TEXTS], pa.string()).slice(1)).tolist() == expected


def test_the_leading_hex_digits_read_as_int_reads_them_and_anything_else_as_zero() -> None:
    values = ["0123456789abcdefXYZ", "FFFFFFFFFFFFFFFF", "ffffffffffffffff00", "0000000000000000"]
    unreadable = [None, "", "0123456789abcde", "0123456789abcdeg", "中文0123456789abcdef", " 123456789abcdef0"]

    read = leading_hex(pa.chunked_array([pa.array(values), pa.array(unreadable, pa.string())])).tolist()

    assert read == [int(value[:16], 16) for value in values] + [0] * len(unreadable)


def test_numbers_are_spelled_in_16_lowercase_hex_digits() -> None:
    numbers = [0, 1, 0xABCDEF, 2**64 - 1]

    assert uint64_hex(np.array(numbers, np.uint64)).to_pylist() == [f"{number:016x}" for number in numbers]
