"""Camera messages → HxWx3 uint8 RGB arrays: ``sensor_msgs/Image`` (raw encodings) and
``sensor_msgs/CompressedImage`` (JPEG or PNG, decoded with OpenCV).

ROS-free on purpose: the functions read only the messages' fields, so rclpy messages (the perception
node) and rosbags messages (bag checks and the ROS-free bag evaluation) decode through the same code.
Every failure is an :class:`InputError` naming what was wrong and what was expected.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from auras_ros.core.errors import InputError
from auras_ros.transport.image_headers import check_byte_size, check_compressed_header

# encoding -> (bytes per pixel, the channels that make RGB, in order)
_LAYOUTS = {"rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0)),
            "mono8": (1, (0, 0, 0)), "8UC3": (3, (0, 1, 2)), "8UC1": (1, (0, 0, 0))}
ENCODINGS = tuple(_LAYOUTS)
# Depth and 16-bit images are distances or raw intensities, not colours: no colour model takes them.
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1", "16SC1", "rgb16", "bgr16", "rgba16", "bgra16")
# image_transport's compressed formats: "jpeg", "png", or "<encoding>; jpeg compressed <encoding>".
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


def _bytes(data: Any) -> np.ndarray:
    return np.frombuffer(data if isinstance(data, (bytes, np.ndarray)) else bytes(data), dtype=np.uint8)


def image_to_rgb(msg: Any, max_pixels: int, where: str) -> np.ndarray:
    """An HxWx3 uint8 RGB array (a copy) from a sensor_msgs/Image, or InputError."""
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
    # Fancy indexing makes the writable copy the message's read-only, reused buffer needs.
    return pixels[:, :, list(order)]


def compressed_format(fmt: str) -> str:
    """The codec named by a CompressedImage ``format`` ("jpeg", "png", "rgb8; jpeg compressed bgr8")."""
    words = fmt.lower().replace(";", " ").split()
    codec = next((w for w in words if w in COMPRESSED_FORMATS), "")
    return "jpeg" if codec == "jpg" else codec


def compressed_to_rgb(msg: Any, max_pixels: int, where: str) -> np.ndarray:
    """An HxWx3 uint8 RGB array from a sensor_msgs/CompressedImage (JPEG or PNG), or InputError."""
    words = msg.format.lower().replace(";", " ").split()
    if "compresseddepth" in words or any(e.lower() in words for e in DEPTH_ENCODINGS):
        raise InputError("compressed image format", where, "a JPEG or PNG colour or mono camera image: a "
                         "depth or 16-bit image is not what a colour model takes", msg.format)
    if not compressed_format(msg.format):
        raise InputError("compressed image format", where, " or ".join(COMPRESSED_FORMATS), msg.format)
    data = _bytes(msg.data)
    if data.size == 0:
        raise InputError("compressed image data", where, f"a {msg.format} image", "0 bytes")
    check_compressed_header(data, max_pixels, where)  # before decoding: the decoder allocates what the header says
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("compressed image data", where, f"bytes OpenCV decodes as {msg.format}",
                         f"{data.size} undecodable bytes")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise InputError("image size", where, f"at most {max_pixels} pixels", f"{bgr.shape[1]}x{bgr.shape[0]}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def is_compressed(msg: Any) -> bool:
    """CompressedImage has ``format``, Image has ``encoding``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def to_rgb(msg: Any, max_pixels: int, where: str) -> np.ndarray:
    """Either camera message as an HxWx3 uint8 RGB array, or InputError."""
    if is_compressed(msg):
        return compressed_to_rgb(msg, max_pixels, where)
    return image_to_rgb(msg, max_pixels, where)
