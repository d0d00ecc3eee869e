"""Content-addressed storage for the photos grid workers and desks attach to cases.

A photo is named by the sha256 of its bytes, so a phone that uploads the same
picture twice stores it once, and a record carries a reference (``sha256:<hex>``)
that can never point at different bytes later. Only real JPEG, PNG or WebP images
within the size and pixel limits are kept: the check reads the image header instead
of trusting the file name or the declared content type, and refuses a header that
claims more pixels than the limit before anything is decoded (a few kilobytes of
PNG can claim gigabytes of pixels: a decompression bomb).

Checking and storing are two steps (:meth:`PhotoStore.check`, :meth:`PhotoStore.keep`)
so that the gateway writes a photo only once the record it came with is accepted: a
refused report leaves nothing on disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from foundation.errors import InputRejected

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
REFERENCE = re.compile(r"^sha256:([0-9a-f]{64})$")
DEFAULT_MAX_PIXELS = 64_000_000
"""About 9,200 x 6,900: above a phone camera's full resolution, below PIL's own bomb warning (89 MP)."""


class PhotoRejected(InputRejected):
    """A photo that is not stored; ``code`` names the problem for the HTTP answer."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code)
        self.code = code


@dataclass(frozen=True)
class Photo:
    """A photo that passed the checks but is not stored yet."""

    data: bytes
    digest: str
    extension: str

    @property
    def reference(self) -> str:
        """What a record carries to name this photo."""
        return f"sha256:{self.digest}"


class PhotoStore:
    """A folder of photos named by content hash, fanned out by the first two hex digits."""

    def __init__(self, root: Path, max_bytes: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def check(self, data: bytes) -> Photo:
        """Check one photo's size, format and pixel count from its header, without storing or decoding it."""
        if len(data) > self.max_bytes:
            raise PhotoRejected("photo_too_large", f"photo is {len(data)} bytes; send one of at most {self.max_bytes}")
        if not data:
            raise PhotoRejected("not_an_image", "photo is empty; attach the JPEG, PNG or WebP file itself")
        try:
            # PIL warns (and past twice its limit raises) on a bomb while it reads the header;
            # the warning is made an error here so the photo is refused instead of logged.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                    kind = image.format or ""
                    width, height = image.size
                    self._check_pixels(width, height)
                    image.verify()
        except PhotoRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoRejected(
                "photo_too_many_pixels", f"photo header claims too many pixels ({exc}); send a smaller picture"
            ) from exc
        except Exception as exc:
            # Any failure of PIL's parsers on untrusted bytes means the same thing: not an image we can keep.
            reason = f"photo is not a readable JPEG, PNG or WebP image ({type(exc).__name__}); send the camera's file"
            raise PhotoRejected("not_an_image", reason) from exc
        if kind not in FORMATS:
            raise PhotoRejected("not_an_image", f"photo format {kind or 'unknown'} is not JPEG, PNG or WebP")
        return Photo(data, hashlib.sha256(data).hexdigest(), FORMATS[kind])

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise PhotoRejected(
                "photo_too_many_pixels",
                f"photo is {width} x {height} pixels; send one of at most {self.max_pixels} pixels",
            )

    def keep(self, photo: Photo) -> str:
        """Store a checked photo (once: the same bytes have the same name); return its reference."""
        path = self._path(photo.digest, photo.extension)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(photo.data)
            temporary.replace(path)
        return photo.reference

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
