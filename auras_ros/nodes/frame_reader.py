"""Frames from a V4L2 device, a video file or an image folder, as RGB arrays (ROS-free)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from auras_ros.core.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class FrameReader:
    """``source``: a device index ("0") or path ("/dev/video0"), a video file, or a folder of images
    (read in name order). ``loop`` restarts files and folders at their end."""

    def __init__(self, source: str, loop: bool = True, size: tuple[int, int] | None = None) -> None:
        self._loop = loop
        self._size = size  # (width, height) to resize to, or None
        self._images: list[Path] = []
        self._index = 0
        self._capture: cv2.VideoCapture | None = None
        if not source:
            raise ConfigError("source", source, "a V4L2 device, a video file or an image folder (required)")
        path = Path(source)
        if path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise ConfigError("source", source, f"a folder holding images ({', '.join(IMAGE_SUFFIXES)})")
            return
        device = int(source) if source.isdigit() else source
        if not source.isdigit() and not path.exists():
            raise ConfigError("source", source, "an existing video file, image folder or V4L2 device")
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise ConfigError("source", source, "a video file or V4L2 device OpenCV can open")

    def read(self) -> np.ndarray | None:
        """The next frame (HxWx3 uint8 RGB), or None at the end of a non-looping source."""
        bgr = self._next_bgr()
        if bgr is None:
            return None
        if self._size is not None:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _next_bgr(self) -> np.ndarray | None:
        if self._images:
            if self._index >= len(self._images):
                if not self._loop:
                    return None
                self._index = 0
            image = cv2.imread(str(self._images[self._index]), cv2.IMREAD_COLOR)
            self._index += 1
            return image
        ok, frame = self._capture.read()
        if not ok and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        return frame if ok else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
