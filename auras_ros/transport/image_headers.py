"""An image's size read from its bytes' header, before any decoding (ROS-free).

Decoding is where an image costs memory and time: a 1.2 MB PNG can declare 20000x20000 pixels (1.2 GB
decoded, seconds of work). The size a PNG or JPEG will decode to sits in its first bytes (PNG's IHDR,
JPEG's SOFn segment), so it is checked there, and so is the message's byte count, before the decoder sees
the data.
"""

from __future__ import annotations

from typing import Any

from auras_ros.core.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# RGBA at 16 bits per channel: the widest pixel a camera's PNG or raw Image carries.
MAX_BYTES_PER_PIXEL = 8
# Bytes beyond the pixels a legitimate image may carry: row padding, metadata chunks, an EXIF thumbnail.
HEADER_ALLOWANCE = 1 << 20
# JPEG markers without a length: TEM and the restart markers RST0..RST7.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# Start-of-frame markers SOF0..SOF15, less DHT (C4), JPG (C8) and DAC (CC), which share the range.
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_EOI, _SOS = 0xD9, 0xDA


def compressed_dimensions(data: Any) -> tuple[int, int] | None:
    """(width, height) stated by a PNG's IHDR or a JPEG's start-of-frame segment; None when the bytes
    (anything with the buffer protocol) begin as neither. Whichever codec the bytes are in counts, not the
    message's ``format``: OpenCV decodes by content too."""
    view = memoryview(data).cast("B")
    if bytes(view[:8]) == PNG_SIGNATURE:
        return _png_dimensions(view)
    if bytes(view[:2]) == b"\xff\xd8":
        return _jpeg_dimensions(view)
    return None


def _png_dimensions(view: memoryview) -> tuple[int, int] | None:
    # The PNG spec puts IHDR first: length (4), "IHDR", width (4, big-endian), height (4).
    if len(view) < 24 or bytes(view[12:16]) != b"IHDR":
        return None
    return int.from_bytes(view[16:20], "big"), int.from_bytes(view[20:24], "big")


def _jpeg_dimensions(view: memoryview) -> tuple[int, int] | None:
    # Segments after SOI: 0xFF, marker, then (except standalone markers) a 2-byte length that counts itself.
    # A decoder needs the frame header before the scan, so no SOF before SOS means no decodable image.
    i = 2
    while i + 4 <= len(view):
        if view[i] != 0xFF:
            return None
        marker = view[i + 1]
        if marker == 0xFF:  # a fill byte before the marker
            i += 1
            continue
        i += 2
        if marker in _STANDALONE:
            continue
        if marker in (_EOI, _SOS):
            return None
        length = int.from_bytes(view[i:i + 2], "big")
        if length < 2:
            return None
        if marker in _SOF:
            # length (2), sample precision (1), height (2), width (2)
            if i + 7 > len(view):
                return None
            return int.from_bytes(view[i + 5:i + 7], "big"), int.from_bytes(view[i + 3:i + 5], "big")
        i += length
    return None


def max_image_bytes(max_pixels: int) -> int:
    """The most bytes an image of at most ``max_pixels`` pixels can take, compressed or raw."""
    return max_pixels * MAX_BYTES_PER_PIXEL + HEADER_ALLOWANCE


def check_byte_size(nbytes: int, max_pixels: int, where: str) -> None:
    """InputError when a message's image data is larger than any image of ``max_pixels`` can be."""
    if nbytes > max_image_bytes(max_pixels):
        raise InputError("image data size", where, f"at most {max_image_bytes(max_pixels)} bytes (an image of at "
                         f"most {max_pixels} pixels)", f"{nbytes} bytes")


def check_compressed_header(data: Any, max_pixels: int, where: str) -> tuple[int, int]:
    """The (width, height) a compressed image will decode to, after checking its byte count and the size its
    header states against ``max_pixels``; InputError, without decoding, when either is out of bounds or the
    bytes have no PNG or JPEG header."""
    nbytes = memoryview(data).nbytes
    check_byte_size(nbytes, max_pixels, where)
    size = compressed_dimensions(data)
    if size is None:
        raise InputError("compressed image data", where, "a PNG or JPEG header stating the image size",
                         f"{nbytes} undecodable bytes")
    width, height = size
    if width == 0 or height == 0:
        raise InputError("image size", where, "a non-empty image", f"{width}x{height}")
    if width * height > max_pixels:
        raise InputError("image size", where, f"at most {max_pixels} pixels", f"{width}x{height}")
    return size
