"""Exports handled column-wise: the bulk lane's fast path from Arrow block to raw batch.

Reading a million-row register through ``csv.DictReader`` and a dict per row costs more
than validating it. A file its reader can hand over as Arrow blocks (a CSV pyarrow
parses cleanly, see :mod:`.readers`) is mapped, keyed and hashed column by column here,
producing exactly the payloads, record ids and content hashes the row-by-row path
(:func:`connectors.exports.export_rows`) would.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.exports.columns import ColumnMap, squash
from schemas.digests import sha256_hex

_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _json_escaped(data: np.ndarray) -> bool:
    """Whether the UTF-8 bytes hold a character JSON escapes: a control character, a quote or a backslash."""
    return bool((data < 0x20).any() or (data == 0x22).any() or (data == 0x5C).any())


def _other_control(data: np.ndarray) -> bool:
    """Whether the UTF-8 bytes hold a control character JSON escapes as ``\\uXXXX`` (not a tab, LF or CR)."""
    control = data[data < 0x20]
    return bool(((control != 0x09) & (control != 0x0A) & (control != 0x0D)).any())


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))


def mapped(block: pa.Table, columns: ColumnMap) -> pa.Table:
    """Headers renamed to field names, as :meth:`ColumnMap.apply` does for one row.

    Two headers naming one field: the later one's cell wins unless it is blank. A templated
    field is its template joined row-wise, blank cells as nothing. A field with a department
    default takes it where the export leaves the cell blank.
    """
    fields: dict[str, pa.ChunkedArray] = {}
    for header in block.column_names:
        name, cells = columns.field(header), block.column(header)
        earlier = fields.get(name)
        fields[name] = cells if earlier is None else pc.if_else(_blank(cells), earlier, cells)
    by_header = {squash(header): block.column(header) for header in block.column_names}
    for name, template in columns.templates.items():
        parts: list[pa.ChunkedArray | str] = []
        for literal, header in template.pieces:
            parts.append(literal)
            if header is not None:
                cells = by_header[squash(header)]
                parts.append(pc.if_else(_blank(cells), "", cells))
        fields[name] = pc.binary_join_element_wise(*parts, "")
    for name, value in columns.defaults.items():
        default = pa.scalar(value, pa.string())
        present = fields.get(name)
        fields[name] = (
            pa.chunked_array([pa.array([value] * block.num_rows, pa.string())])
            if present is None
            else pc.if_else(_blank(present), default, present)
        )
    return pa.table(fields)


def record_ids(payload: pa.Table, columns: ColumnMap, origin: str, first_number: int) -> pa.Array:
    """Each row's source record id: its key, else the department's row id, else ``origin:number``."""
    ids = pa.nulls(payload.num_rows, pa.string())
    for name, transform in ((columns.record_id, pc.utf8_trim_whitespace), (columns.key_field, _key)):
        if name and name in payload.column_names:
            value = transform(pc.fill_null(payload.column(name), ""))
            ids = pc.if_else(pc.equal(value, ""), ids, value)
    numbers = pa.array(range(first_number, first_number + payload.num_rows), pa.int64())
    positions = pc.binary_join_element_wise(origin, pc.cast(numbers, pa.string()), ":")
    chosen = pc.coalesce(ids, positions)
    return chosen.combine_chunks() if isinstance(chosen, pa.ChunkedArray) else chosen


def _key(value: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.utf8_upper(pc.utf8_trim_whitespace(value))


def _holds(column: pa.ChunkedArray, found: Callable[[np.ndarray], bool]) -> bool:
    """Whether ``found`` finds what it looks for in the UTF-8 bytes of a text column's values.

    The bytes are compared in the column's data buffer directly: a regular expression over the
    column took a ninth of ``gridhub ingest``'s CPU for a million-row register (bench/PROFILE.md).
    Every byte of a character of several bytes is 0x80 or above, so none is taken for an ASCII one.
    """
    for chunk in column.chunks:
        if not len(chunk) or pa.types.is_null(chunk.type):
            continue
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.string())
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        _, offsets, data = chunk.buffers()
        if data is None:
            continue
        bounds = np.frombuffer(offsets, width, len(chunk) + 1, chunk.offset * np.dtype(width).itemsize)
        if found(np.frombuffer(data, np.uint8, int(bounds[-1] - bounds[0]), int(bounds[0]))):
            return True
    return False


def _json_text(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Each cell as JSON (``json.dumps(..., ensure_ascii=False)``): quoted and escaped, or null.

    None when a cell holds a control character JSON escapes as ``\\uXXXX``.
    """
    text = column
    if _holds(column, _json_escaped):
        if _holds(column, _other_control):
            return None
        for plain, escaped in _ESCAPES:
            text = pc.replace_substring(text, plain, escaped)
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    return pc.fill_null(quoted, "null")


def content_hashes(payload: pa.Table) -> pa.Array | None:
    """sha256 of each row's canonical JSON, as :func:`connectors.base.content_hash` computes it.

    None when a cell holds a control character JSON escapes as ``\\uXXXX``: such a block is
    hashed row by row instead.
    """
    parts: list[pa.ChunkedArray | str] = []
    for index, name in enumerate(sorted(payload.column_names)):
        text = _json_text(payload.column(name))
        if text is None:
            return None
        parts += [("{" if index == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":", text]
    parts.append("}")
    return sha256_hex(pc.binary_join_element_wise(*parts, ""))
