"""Frames from a V4L2 device, a video file or an image folder, as RGB arrays (ROS-free).

A frame that does not decode (a corrupt or vanished image file, a damaged frame in a video) is skipped
and counted, not taken for the source's end; only a source that yields no frame at all ends."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from auras_ros.core.errors import ConfigError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# A video read that fails is a damaged frame when a later read succeeds, the file's end when this many in a
# row fail (a read at the end returns at once, so the cost is small).
MAX_FAILED_VIDEO_READS = 30


class FrameReader:
    """``source``: a device index ("0") or path ("/dev/video0"), a video file, or a folder of images
    (read in name order). ``loop`` restarts files and folders at their end."""

    def __init__(self, source: str, loop: bool = True, size: tuple[int, int] | None = None) -> None:
        self._source = source
        self._loop = loop
        self._size = size  # (width, height) to resize to, or None
        self._images: list[Path] = []
        self._index = 0
        # Images that did not decode are not read again on later passes: OpenCV logs an error at every try.
        self._undecodable: set[Path] = set()
        self._capture: cv2.VideoCapture | None = None
        self.skipped = 0  # frames that did not decode
        self.last_skipped = ""  # which, and why
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
        # A device's failed read can block for its timeout and means the device is gone: no retries.
        self._video_reads = 1 if source.isdigit() or path.is_char_device() else MAX_FAILED_VIDEO_READS
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise ConfigError("source", source, "a video file or V4L2 device OpenCV can open")

    def read(self) -> np.ndarray | None:
        """The next frame that decodes (HxWx3 uint8 RGB), those that do not skipped and counted; None at the
        end of a non-looping source or when a looping video or device gives no frame; InputError when a
        whole pass over a folder finds no image that decodes."""
        bgr = self._next_image() if self._images else self._next_video_frame()
        if bgr is None:
            return None
        if self._size is not None:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(bgr[:, :, ::-1])

    def _skip(self, count: int, why: str) -> None:
        self.skipped += count
        self.last_skipped = why

    def _next_image(self) -> np.ndarray | None:
        for _ in range(len(self._images)):  # one whole pass at most
            if self._index >= len(self._images):
                if not self._loop:
                    return None
                self._index = 0
            path = self._images[self._index]
            self._index += 1
            image = None if path in self._undecodable else cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            self._undecodable.add(path)
            self._skip(1, f"{path}: {'not a decodable image' if path.exists() else 'gone'}")
        raise InputError("image folder", self._source, "at least one decodable image in a pass over the folder",
                         f"none of {len(self._images)} files decodes (last: {self.last_skipped})")

    def _next_video_frame(self) -> np.ndarray | None:
        frame = self._read_video()
        if frame is None and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            frame = self._read_video()
        return frame

    def _read_video(self) -> np.ndarray | None:
        for failed in range(self._video_reads):
            ok, frame = self._capture.read()
            if ok:
                if failed:
                    self._skip(failed, f"{failed} frames of {self._source} did not decode")
                return frame
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
