"""Camera messages to RGB arrays (auras_ros/transport/images.py), for the perception node and the bag tools:
raw encodings and CompressedImage (JPEG, PNG), and a clear error for what does not decode."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from auras_ros.transport.images import compressed_format, to_rgb

PIXELS = np.dstack([np.tile(np.arange(0, 256, 16, dtype=np.uint8), (12, 1))] * 3)  # 12x16, RGB
PIXELS[..., 1] = 200


def _compressed(fmt: str, ext: str) -> SimpleNamespace:
    ok, data = cv2.imencode(ext, PIXELS[:, :, ::-1])
    assert ok
    return SimpleNamespace(format=fmt, data=data.tobytes())


def test_png_decodes_exactly_and_jpeg_closely():
    assert np.array_equal(to_rgb(_compressed("png", ".png"), 10**6, "test"), PIXELS)
    jpeg = to_rgb(_compressed("rgb8; jpeg compressed bgr8", ".jpg"), 10**6, "test")
    assert jpeg.shape == PIXELS.shape and np.abs(jpeg.astype(int) - PIXELS).mean() < 4


def test_raw_images_keep_decoding():
    msg = SimpleNamespace(encoding="bgr8", height=12, width=16, step=48, data=PIXELS[:, :, ::-1].tobytes())
    assert np.array_equal(to_rgb(msg, 10**6, "test"), PIXELS)


@pytest.mark.parametrize("msg, expected", [
    (SimpleNamespace(format="jpeg", data=b"\xff\xd8 not a jpeg"), "compressed image data is '13 undecodable bytes'"),
    (SimpleNamespace(format="jpeg", data=b""), "compressed image data is '0 bytes'"),
    (SimpleNamespace(format="theora", data=b"abc"), "compressed image format is 'theora', expected jpeg or jpg or png"),
    (_compressed("png", ".png"), "image size is '16x12', expected at most 100 pixels"),
], ids=["garbage", "empty", "unknown-format", "too-large"])
def test_what_does_not_decode_is_named(msg, expected):
    with pytest.raises(ValueError) as error:
        to_rgb(msg, 100, "perception_node image")
    assert str(error.value).startswith("perception_node image: ") and expected in str(error.value)


def test_compressed_formats_of_image_transport():
    assert compressed_format("jpeg") == compressed_format("bgr8; jpeg compressed bgr8") == "jpeg"
    assert compressed_format("PNG") == "png" and compressed_format("rgb8; compressedDepth png") == "png"
    assert compressed_format("h264") == ""
