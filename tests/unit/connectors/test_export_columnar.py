"""The column-wise path's search for characters JSON escapes, read from the Arrow buffers directly."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.exports.columnar import _holds, _json_escaped, _other_control


def test_only_the_values_a_sliced_column_shows_are_searched() -> None:
    values = pa.array(['孟河"镇', "小河村", "万绥\\村", "通江路"])
    assert _holds(pa.chunked_array([values]), _json_escaped)
    assert not _holds(pa.chunked_array([values.slice(1, 1)]), _json_escaped)
    assert not _holds(pa.chunked_array([values.slice(1, 1), values.slice(3)]), _json_escaped)
    assert _holds(pa.chunked_array([values.slice(1, 1), values.slice(2, 1)]), _json_escaped)


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()], ids=["string", "large_string"])
def test_a_control_character_is_found_and_no_byte_of_a_chinese_character_is_taken_for_one(kind: pa.DataType) -> None:
    chinese = pa.chunked_array([pa.array(["孟河镇", None, "常州市新北区"], kind)])
    assert not _holds(chinese, _json_escaped)
    assert not _holds(chinese, _other_control)
    assert _holds(pa.chunked_array([pa.array(["孟河镇", "小河\x1f村"], kind)]), _other_control)
    assert not _holds(pa.chunked_array([pa.array(["孟河镇\n", "小河\t村\r"], kind)]), _other_control)


def test_columns_with_no_text_hold_nothing() -> None:
    assert not _holds(pa.chunked_array([pa.nulls(3)]), _json_escaped)
    assert not _holds(pa.chunked_array([], pa.string()), _json_escaped)
