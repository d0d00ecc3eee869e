"""Files for a test: exports as departments deliver them, photos as phones take them."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from tests.support.identities import resident_id


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], encoding: str = "utf-8") -> Path:
    """A CSV export with this header and these rows (cells written as text; None as an empty cell)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return path


def write_register(path: Path, size: int) -> list[str]:
    """A household register of ``size`` residents with fresh valid IDs (姓名, 公民身份号码, 住址); returns the IDs."""
    ids = [resident_id() for _ in range(size)]
    write_csv(
        path, ["姓名", "公民身份号码", "住址"], ([f"居民{number}", code, "孟河镇"] for number, code in enumerate(ids))
    )
    return ids


def picture(
    image_format: str = "PNG", colour: tuple[int, int, int] = (0, 90, 200), size: tuple[int, int] = (32, 32)
) -> bytes:
    """A real image of one colour (``PNG`` or ``JPEG``), as a phone's camera would deliver it."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=image_format)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header that claims ``width`` x ``height`` pixels, in under a hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
