"""Camera messages → HxWx3 uint8 RGB arrays: ``sensor_msgs/Image`` (raw encodings) and
``sensor_msgs/CompressedImage`` (JPEG or PNG, decoded with OpenCV).

ROS-free on purpose: the functions read only the messages' fields, so rclpy messages (the perception
node) and rosbags messages (bag checks and the ROS-free bag evaluation) decode through the same code.
Every failure is an :class:`InputError` naming what was wrong and what was expected.

A camera far larger than the model's input (a 4K camera for a 96x96 policy) is reduced while it is
decoded, to the smallest of 1/2, 1/4 or 1/8 of its size that the model's resize rule still only shrinks
(:func:`reduction`, from the size in the header): a JPEG through libjpeg's scaled decoding (OpenCV's
``IMREAD_REDUCED_COLOR_n``: most of the inverse DCT and colour conversion skipped), a raw image by area
averaging the message's buffer in place of copying it whole. The prepared image then differs from the
full-size path's by rounding only: mean |difference| <= 2 levels of 255 on camera-like images (measured
0.1-1.1 from 4K; images of pure noise, which no camera sees, up to 6), tested in
test/transport/test_reduced_decoding.py. A PNG, an image the rule would have to enlarge, or one for a model
that resamples by another rule than area averaging (a checkpoint's bicubic, matched pixel for pixel) is
decoded whole.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from auras_ros.core.errors import InputError
from auras_ros.core.inputs import InputSpec, scaled_size
from auras_ros.transport.image_headers import check_byte_size, check_compressed_header

# encoding -> (bytes per pixel, the channels that make RGB, in order)
_LAYOUTS = {"rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0)),
            "mono8": (1, (0, 0, 0)), "8UC3": (3, (0, 1, 2)), "8UC1": (1, (0, 0, 0))}
ENCODINGS = tuple(_LAYOUTS)
# Depth and 16-bit images are distances or raw intensities, not colours: no colour model takes them.
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1", "16SC1", "rgb16", "bgr16", "rgba16", "bgra16")
# image_transport's compressed formats: "jpeg", "png", or "<encoding>; jpeg compressed <encoding>".
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
# The reductions libjpeg decodes at directly, largest first, with OpenCV's flag for each.
REDUCTIONS = (8, 4, 2)
_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def reduced_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """(H, W) of an image reduced by ``factor``: rounded up, as libjpeg's scaled decoding does."""
    return -(-height // factor), -(-width // factor)


def reduction(fit: InputSpec | None, height: int, width: int) -> int:
    """The largest factor of :data:`REDUCTIONS` by which an image of ``height`` x ``width`` can be reduced
    and still be at least the size ``fit``'s resize rule scales it to (so the rule still only shrinks it);
    1 when none can, when ``fit`` takes any size (None: no model to fit), or when it resamples other than
    by area averaging: a checkpoint whose processor's bicubic resize it matches pixel for pixel (OpenVLA)
    gets the image whole."""
    if fit is None or fit.size is None or fit.interpolation != "area":
        return 1
    least_h, least_w = scaled_size(fit.size, fit.resize, height, width)
    for factor in REDUCTIONS:
        h, w = reduced_size(height, width, factor)
        if h >= least_h and w >= least_w:
            return factor
    return 1


def _bytes(data: Any) -> np.ndarray:
    return np.frombuffer(data if isinstance(data, (bytes, np.ndarray)) else bytes(data), dtype=np.uint8)


def image_to_rgb(msg: Any, max_pixels: int, where: str, fit: InputSpec | None = None) -> np.ndarray:
    """An HxWx3 uint8 RGB array (a copy) from a sensor_msgs/Image, or InputError; reduced for ``fit``
    (the model's input form) when it is much larger (:func:`reduction`)."""
    if msg.encoding in DEPTH_ENCODINGS:
        raise InputError("image encoding", where, "an 8-bit colour or mono camera image (" + ", ".join(ENCODINGS) +
                         "): a depth or 16-bit image is not what a colour model takes", msg.encoding)
    if msg.encoding not in ENCODINGS:
        raise InputError("image encoding", where, " or ".join(ENCODINGS), msg.encoding)
    if msg.height == 0 or msg.width == 0:
        raise InputError("image size", where, "a non-empty image", f"{msg.width}x{msg.height}")
    if msg.height * msg.width > max_pixels:
        raise InputError("image size", where, f"at most {max_pixels} pixels", f"{msg.width}x{msg.height}")
    check_byte_size(len(msg.data), max_pixels, where)
    channels, order = _LAYOUTS[msg.encoding]
    if msg.step < msg.width * channels or len(msg.data) != msg.step * msg.height:
        raise InputError("image data length", where, f"step*height = {msg.step}*{msg.height} bytes with "
                         f"step >= {msg.width * channels}", len(msg.data))
    rows = _bytes(msg.data).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    factor = reduction(fit, msg.height, msg.width)
    if factor > 1:
        # Area averaging reads the message's buffer once, where the copy below would write it whole first.
        height, width = reduced_size(msg.height, msg.width, factor)
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, channels)
    # Fancy indexing makes the writable copy the message's read-only, reused buffer needs.
    return pixels[:, :, list(order)]


def compressed_format(fmt: str) -> str:
    """The codec named by a CompressedImage ``format`` ("jpeg", "png", "rgb8; jpeg compressed bgr8")."""
    words = fmt.lower().replace(";", " ").split()
    codec = next((w for w in words if w in COMPRESSED_FORMATS), "")
    return "jpeg" if codec == "jpg" else codec


def compressed_to_rgb(msg: Any, max_pixels: int, where: str, fit: InputSpec | None = None) -> np.ndarray:
    """An HxWx3 uint8 RGB array from a sensor_msgs/CompressedImage (JPEG or PNG), or InputError; a JPEG
    decoded reduced for ``fit`` (the model's input form) when it is much larger (:func:`reduction`)."""
    words = msg.format.lower().replace(";", " ").split()
    if "compresseddepth" in words or any(e.lower() in words for e in DEPTH_ENCODINGS):
        raise InputError("compressed image format", where, "a JPEG or PNG colour or mono camera image: a "
                         "depth or 16-bit image is not what a colour model takes", msg.format)
    if not compressed_format(msg.format):
        raise InputError("compressed image format", where, " or ".join(COMPRESSED_FORMATS), msg.format)
    data = _bytes(msg.data)
    if data.size == 0:
        raise InputError("compressed image data", where, f"a {msg.format} image", "0 bytes")
    # Before decoding: the decoder allocates what the header says.
    width, height = check_compressed_header(data, max_pixels, where)
    # By content, as OpenCV decodes: its reduced flags on a PNG decode it whole and then resize.
    factor = reduction(fit, height, width) if bytes(data[:2]) == b"\xff\xd8" else 1
    bgr = cv2.imdecode(data, _JPEG_REDUCED.get(factor, cv2.IMREAD_COLOR))
    if bgr is None:
        raise InputError("compressed image data", where, f"bytes OpenCV decodes as {msg.format}",
                         f"{data.size} undecodable bytes")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise InputError("image size", where, f"at most {max_pixels} pixels", f"{bgr.shape[1]}x{bgr.shape[0]}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def is_compressed(msg: Any) -> bool:
    """CompressedImage has ``format``, Image has ``encoding``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def to_rgb(msg: Any, max_pixels: int, where: str, fit: InputSpec | None = None) -> np.ndarray:
    """Either camera message as an HxWx3 uint8 RGB array, or InputError. ``fit``: the model's input form,
    for which a much larger image is reduced while decoding (the module's docstring); None: full size."""
    if is_compressed(msg):
        return compressed_to_rgb(msg, max_pixels, where, fit)
    return image_to_rgb(msg, max_pixels, where, fit)
