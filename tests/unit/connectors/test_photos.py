"""The photo store: real images within the byte and pixel limits are kept, by content, and only when asked."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from connectors.photos import PhotoRejected, PhotoStore
from tests.support.files import picture, png_claiming


def webp() -> bytes:
    return picture("WEBP", (20, 200, 20), (16, 16))


@pytest.fixture
def store(tmp_path: Path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos", max_bytes=200_000)


def stored_files(store: PhotoStore) -> list[Path]:
    return sorted(path for path in store.root.rglob("*") if path.is_file()) if store.root.exists() else []


@pytest.mark.parametrize("image", [picture("JPEG"), picture("PNG"), webp()], ids=["jpeg", "png", "webp"])
def test_real_images_are_checked_without_being_stored_then_kept_by_content(store: PhotoStore, image: bytes) -> None:
    photo = store.check(image)
    assert photo.reference == f"sha256:{hashlib.sha256(image).hexdigest()}"
    assert stored_files(store) == []

    assert store.keep(photo) == photo.reference
    assert store.keep(store.check(image)) == photo.reference  # the same bytes are stored once
    [path] = stored_files(store)
    assert path.read_bytes() == image
    assert store.find(photo.reference) == path


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not_an_image"),
        (b"%PDF-1.4 not a picture", "not_an_image"),
        (picture("GIF"), "not_an_image"),  # a real image, in a format phones do not send
        (picture("PNG")[:40], "not_an_image"),  # cut off mid-upload
        (b"\0" * 200_001, "photo_too_large"),
    ],
    ids=["empty", "pdf", "gif", "truncated", "too-many-bytes"],
)
def test_what_is_not_a_photo_is_refused_with_its_code(store: PhotoStore, data: bytes, code: str) -> None:
    with pytest.raises(PhotoRejected) as refused:
        store.check(data)
    assert refused.value.code == code


@pytest.mark.parametrize("side", [30_000, 10_000, 9_000], ids=["past-pil-error", "past-pil-warning", "past-limit"])
def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(store: PhotoStore, side: int) -> None:
    """30,000 x 30,000 raised PIL's DecompressionBombError (a 500 before); 10,000 x 10,000 only warned."""
    bomb = png_claiming(side, side)
    assert len(bomb) < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's bomb warning must not escape either
        with pytest.raises(PhotoRejected) as refused:
            store.check(bomb)
    assert refused.value.code == "photo_too_many_pixels"
    assert stored_files(store) == []


def test_the_pixel_limit_is_the_stores_own(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_bytes=10_000, max_pixels=100)
    assert store.check(picture("PNG", size=(10, 10))).extension == "png"
    with pytest.raises(PhotoRejected, match="11 x 10 pixels") as refused:
        store.check(picture("PNG", size=(11, 10)))
    assert refused.value.code == "photo_too_many_pixels"


def test_pil_global_limit_is_left_alone(store: PhotoStore) -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(PhotoRejected):
        store.check(png_claiming(30_000, 30_000))
    assert before == Image.MAX_IMAGE_PIXELS


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBPVP8 "]),
    data=st.binary(max_size=512),
)
def test_any_bytes_are_a_photo_or_a_refusal_never_another_error(prefix: bytes, data: bytes) -> None:
    store = PhotoStore(Path("/nonexistent"), max_bytes=10_000)
    try:
        store.check(prefix + data)
    except PhotoRejected as refused:
        assert refused.code in {"not_an_image", "photo_too_large", "photo_too_many_pixels"}


@settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(cut=st.integers(min_value=0, max_value=2000), flip=st.integers(min_value=0, max_value=255))
def test_damaged_real_images_are_a_photo_or_a_refusal(cut: int, flip: int) -> None:
    image = bytearray(picture("JPEG", size=(40, 30)))
    image[cut % len(image)] ^= flip
    try:
        PhotoStore(Path("/nonexistent"), max_bytes=100_000).check(bytes(image))
    except PhotoRejected as refused:
        assert refused.code == "not_an_image"
