"""A camera much larger than the model's input is reduced while it is decoded (transport/images.py): the
factor comes from the size in the header, never leaves the image smaller than the size the model's
resize rule scales it to, and the prepared image stays within the stated tolerance of the full-size
path's (mean |difference| <= 2 levels of 255)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from auras_ros.core.inputs import InputSpec, scaled_size
from auras_ros.models.inputs import prepare_image
from auras_ros.transport.image_headers import compressed_dimensions
from auras_ros.transport.images import reduced_size, reduction, to_rgb

MAX_PIXELS = 4096 * 4096
TOLERANCE = 2.0  # mean |difference| of the prepared images, in levels of 255 (the module's stated bound)


def camera_like(height: int, width: int) -> np.ndarray:
    """Gradients, a few solid shapes and sensor noise: what a camera sees, not pure noise."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, (x // 7 + y // 5) % 256], axis=-1).astype(np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(height, width) // 3, (200, 30, 90), -1)
    cv2.rectangle(image, (width // 10, height // 10), (width // 4, height // 3), (20, 220, 40), -1)
    noise = np.random.default_rng(0).integers(-12, 13, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray) -> CompressedImage:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(pixels[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return CompressedImage(format="jpeg", data=data.tobytes())


def rgb8(pixels: np.ndarray) -> Image:
    height, width = pixels.shape[:2]
    return Image(height=height, width=width, encoding="rgb8", step=width * 3, data=pixels.tobytes())


SPECS = [InputSpec(size=(96, 96)), InputSpec(size=(96, 128), resize="pad"), InputSpec(size=(84, 84), resize="crop"),
         InputSpec(size=(224, 224))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.size[0]}x{s.size[1]}-{s.resize}")
@pytest.mark.parametrize("make", [jpeg, rgb8], ids=["jpeg", "rgb8"])
def test_the_reduced_path_prepares_the_image_within_tolerance_of_the_full_path(make, spec: InputSpec) -> None:
    msg = make(camera_like(960, 1280))
    reduced = to_rgb(msg, MAX_PIXELS, "test", spec)
    full = to_rgb(msg, MAX_PIXELS, "test")
    assert full.shape == (960, 1280, 3) and reduced.shape[0] < 960  # the reduction happened
    difference = np.abs(prepare_image(spec, reduced, "test").astype(int) - prepare_image(spec, full, "test"))
    assert difference.mean() <= TOLERANCE, difference.mean()


@pytest.mark.parametrize("height, width", [(960, 1280), (757, 1001), (2160, 3840), (480, 640), (200, 300)])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.size[0]}x{s.size[1]}-{s.resize}")
def test_the_reduction_comes_from_the_header_and_never_goes_below_the_models_size(height: int, width: int,
                                                                                   spec: InputSpec) -> None:
    msg = jpeg(np.zeros((height, width, 3), np.uint8))
    assert compressed_dimensions(np.frombuffer(msg.data, np.uint8)) == (width, height)
    factor = reduction(spec, height, width)
    decoded = to_rgb(msg, MAX_PIXELS, "test", spec)
    assert decoded.shape[:2] == reduced_size(height, width, factor)  # what libjpeg decodes at that factor
    least_h, least_w = scaled_size(spec.size, spec.resize, height, width)
    if factor > 1:  # the rule still only shrinks it (a camera smaller than the model's size stays whole)
        assert decoded.shape[0] >= least_h and decoded.shape[1] >= least_w
    if factor < 8:  # the next factor would have gone below: the largest one was chosen
        smaller = reduced_size(height, width, factor * 2)
        assert smaller[0] < least_h or smaller[1] < least_w
    assert to_rgb(rgb8(np.zeros((height, width, 3), np.uint8)), MAX_PIXELS, "test", spec).shape == decoded.shape


def test_the_choice_for_a_4k_camera() -> None:
    assert reduction(InputSpec(size=(96, 96)), 2160, 3840) == 8  # 270x480
    assert reduction(InputSpec(size=(224, 224)), 2160, 3840) == 8  # 270x480 >= 224x224
    assert reduction(InputSpec(size=(300, 300)), 2160, 3840) == 4  # 540x960
    assert reduction(InputSpec(size=(1080, 1920)), 2160, 3840) == 2
    assert reduction(InputSpec(size=(1081, 1920)), 2160, 3840) == 1


@pytest.mark.parametrize("spec", [None, InputSpec(), InputSpec(size=(600, 600)),
                                  InputSpec(size=(96, 96), interpolation="bicubic")],
                         ids=["no-model", "any-size", "large", "bicubic"])
def test_no_reduction_keeps_the_full_size_percept(spec: InputSpec | None) -> None:
    pixels = camera_like(480, 640)
    for msg in (jpeg(pixels), rgb8(pixels)):
        assert np.array_equal(to_rgb(msg, MAX_PIXELS, "test", spec), to_rgb(msg, MAX_PIXELS, "test"))


def test_a_png_is_decoded_whole() -> None:
    """OpenCV's reduced flags decode a PNG whole and then resize: no saving, another result, so none."""
    pixels = camera_like(480, 640)
    ok, data = cv2.imencode(".png", pixels[:, :, ::-1])
    assert ok
    msg = CompressedImage(format="png", data=data.tobytes())
    assert np.array_equal(to_rgb(msg, MAX_PIXELS, "test", InputSpec(size=(32, 32))), pixels)


@pytest.mark.parametrize("encoding, channels", [("bgra8", 4), ("mono8", 1)])
def test_other_raw_encodings_reduce_to_rgb(encoding: str, channels: int) -> None:
    """Rows padded beyond width * channels (step), read from the message's own buffer."""
    pixels = camera_like(480, 640)
    planes = {"bgra8": np.dstack([pixels[:, :, ::-1], np.full((480, 640), 255, np.uint8)]),
              "mono8": pixels[:, :, :1]}[encoding]
    step = 640 * channels + 8
    rows = np.zeros((480, step), np.uint8)
    rows[:, :640 * channels] = planes.reshape(480, -1)
    msg = Image(height=480, width=640, encoding=encoding, step=step, data=rows.tobytes())
    spec = InputSpec(size=(96, 96))
    reduced = to_rgb(msg, MAX_PIXELS, "test", spec)
    full = to_rgb(msg, MAX_PIXELS, "test")
    assert reduced.shape == (120, 160, 3)
    difference = np.abs(prepare_image(spec, reduced, "test").astype(int) - prepare_image(spec, full, "test"))
    assert difference.mean() <= TOLERANCE, difference.mean()
