"""Content-addressed storage for the photos grid workers and desks attach to cases.

A photo is named by the sha256 of its bytes, so a phone that uploads the same
picture twice stores it once, and a record carries a reference (``sha256:<hex>``)
that can never point at different bytes later. Only real JPEG, PNG or WebP images
within the size limit are kept: the check decodes the image header instead of
trusting the file name or the declared content type.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from foundation.errors import InputRejected

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
REFERENCE = re.compile(r"^sha256:([0-9a-f]{64})$")


class PhotoRejected(InputRejected):
    """A photo that is not stored; ``code`` names the problem for the HTTP answer."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code)
        self.code = code


class PhotoStore:
    """A folder of photos named by content hash, fanned out by the first two hex digits."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def put(self, data: bytes) -> str:
        """Check and store one photo; return its reference."""
        if len(data) > self.max_bytes:
            raise PhotoRejected("photo_too_large", f"photo is {len(data)} bytes; the limit is {self.max_bytes}")
        if not data:
            raise PhotoRejected("not_an_image", "photo is empty")
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise PhotoRejected("not_an_image", f"photo is not a readable JPEG, PNG or WebP image ({exc})") from exc
        if kind not in FORMATS:
            raise PhotoRejected("not_an_image", f"photo format {kind or 'unknown'} is not JPEG, PNG or WebP")
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest, FORMATS[kind])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(data)
            temporary.replace(path)
        return f"sha256:{digest}"

    def find(self, reference: str) -> Path | None:
        """The stored file of a reference, or None if it is malformed or unknown."""
        match = REFERENCE.match(reference)
        if not match:
            return None
        digest = match.group(1)
        for extension in FORMATS.values():
            path = self._path(digest, extension)
            if path.exists():
                return path
        return None

    def _path(self, digest: str, extension: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{extension}"
