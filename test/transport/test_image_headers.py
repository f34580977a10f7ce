"""Image sizes read from the header before decoding (auras_ros/transport/image_headers.py): a PNG or JPEG
that declares more pixels than allowed, or a message with more bytes than any allowed image, is refused
without the decoder ever seeing it."""

from __future__ import annotations

import struct
import zlib
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from auras_ros.core.errors import InputError
from auras_ros.transport import images
from auras_ros.transport.image_headers import compressed_dimensions, max_image_bytes

PIXELS = np.zeros((12, 16, 3), dtype=np.uint8)
MAX_PIXELS = 4096 * 4096


def _encoded(ext: str) -> bytes:
    ok, data = cv2.imencode(ext, PIXELS)
    assert ok
    return data.tobytes()


def _png_declaring(width: int, height: int) -> bytes:
    """A real small PNG whose IHDR (with a valid CRC) states ``width`` x ``height``: what a 1 MB PNG of a
    huge solid image looks like to anything reading the header."""
    data = bytearray(_encoded(".png"))
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def _jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encoded(".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(images.cv2, "imdecode", lambda data, flags: calls.append(len(data)))
    return calls


def test_dimensions_come_from_png_and_jpeg_headers() -> None:
    assert compressed_dimensions(_encoded(".png")) == (16, 12)
    assert compressed_dimensions(_encoded(".jpg")) == (16, 12)
    assert compressed_dimensions(_png_declaring(20000, 20000)) == (20000, 20000)
    assert compressed_dimensions(_jpeg_declaring(20000, 15000)) == (20000, 15000)
    assert compressed_dimensions(b"\xff\xd8\xff\xda\x00\x02") is None  # a scan before any frame header
    assert compressed_dimensions(b"GIF89a") is None


@pytest.mark.parametrize("data", [_png_declaring(20000, 20000), _jpeg_declaring(20000, 20000)], ids=["png", "jpeg"])
def test_a_huge_declared_image_is_refused_without_decoding(data: bytes, no_decoding: list[int]) -> None:
    with pytest.raises(InputError) as error:
        images.to_rgb(SimpleNamespace(format="png", data=data), MAX_PIXELS, "perception_node image")
    assert str(error.value) == (f"perception_node image: image size is '20000x20000', expected at most {MAX_PIXELS} "
                                "pixels")
    assert no_decoding == []


def test_more_bytes_than_any_allowed_image_are_refused_without_decoding(no_decoding: list[int]) -> None:
    data = _encoded(".png") + bytes(max_image_bytes(100))
    with pytest.raises(InputError, match=rf"image data size is '{len(data)} bytes', expected at most "
                                         rf"{max_image_bytes(100)} bytes \(an image of at most 100 pixels\)"):
        images.to_rgb(SimpleNamespace(format="png", data=data), 100, "bag image")
    raw = SimpleNamespace(encoding="rgb8", width=10, height=10, step=30 + max_image_bytes(100), data=b"")
    raw.data = bytes(raw.step * raw.height)
    with pytest.raises(InputError, match="image data size"):
        images.to_rgb(raw, 100, "bag image")
    assert no_decoding == []


def test_bytes_without_a_header_are_refused_without_decoding(no_decoding: list[int]) -> None:
    with pytest.raises(InputError, match="compressed image data is '6 undecodable bytes', expected a PNG or JPEG "
                                         "header stating the image size"):
        images.to_rgb(SimpleNamespace(format="jpeg", data=b"GIF89a"), MAX_PIXELS, "bag image")
    assert no_decoding == []


def test_images_within_bounds_still_decode() -> None:
    for ext in (".png", ".jpg"):
        assert images.to_rgb(SimpleNamespace(format="png", data=_encoded(ext)), 16 * 12, "test").shape == (12, 16, 3)
