"""Writing rosbag2 mcap bags a reader can trust, ROS-free: rosbags' writer with chunk CRCs, and a write
that fails (a full disk) ending the recording with a finished bag of what was written before it.

rosbags' mcap writer stores every CRC as 0 ("not computed"), so a flipped byte in a bag it wrote reads
back as valid; this one stores the CRC-32 of every chunk (which rosbags' and mcap's readers then check),
of the data section and of the summary (which :func:`auras_ros.eval.bag.check_bag` checks).
rosbags writes through a buffered file, ignores short writes and, when a write raises, aborts without
the summary: an mcap no reader opens. Here every write is whole or raises, a chunk that fails is cut off
the file (and its messages from the counts), and the summary and metadata.yaml are written for the
chunks before it.
"""

from __future__ import annotations

import errno
import io
import os
from binascii import crc32
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, cast

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter, PendingChunk

# A Chunk record: opcode (1), record length (8), message start time (8), end time (8), uncompressed
# size (8), then the CRC-32 of the uncompressed records (4).
CHUNK_CRC_OFFSET = 1 + 8 + 8 + 8 + 8
# The file's end: the Footer record (opcode, length, summary start, summary offset start, summary CRC),
# then the magic; the DataEnd record (opcode, length, data section CRC) just before the summary.
MAGIC_SIZE = 8
FOOTER_SIZE = 1 + 8 + 8 + 8 + 4
DATA_END_SIZE = 1 + 8 + 4
DATA_END, FOOTER = 0x0F, 0x02
CRC_BLOCK = 1 << 20  # bytes read at a time when computing a section's CRC


@dataclass(frozen=True)
class SectionCrcs:
    """Where an mcap file's data-section and summary CRCs sit, and their values computed from its bytes."""

    data_crc_at: int
    data_crc: int
    summary_crc_at: int
    summary_crc: int


def _crc_of(stream: Any, start: int, end: int) -> int:
    stream.seek(start)
    crc = 0
    while start < end:
        block = stream.read(min(CRC_BLOCK, end - start))
        if not block:
            raise ValueError(f"the file ends at byte {start}, before byte {end}")
        crc, start = crc32(block, crc), start + len(block)
    return crc


def section_crcs(stream: Any) -> SectionCrcs | None:
    """The data-section CRC (every byte before the DataEnd record) and the summary CRC (from the summary's
    start to the Footer's CRC field) of a finished mcap file open for reading; None for a file without a
    summary section; ValueError when its end is not a Footer, or no DataEnd record sits before its summary."""
    size = stream.seek(0, io.SEEK_END)
    footer_at = size - MAGIC_SIZE - FOOTER_SIZE
    stream.seek(footer_at)
    footer = stream.read(FOOTER_SIZE)
    if footer_at < 0 or footer[0] != FOOTER:
        raise ValueError("no mcap footer at the end of the file")
    summary_start = int.from_bytes(footer[9:17], "little")
    if summary_start == 0:
        return None
    data_end_at = summary_start - DATA_END_SIZE
    stream.seek(max(data_end_at, 0))
    if data_end_at < MAGIC_SIZE or stream.read(1) != bytes([DATA_END]):
        raise ValueError(f"no DataEnd record before the summary at byte {summary_start}")
    summary_crc_at = footer_at + FOOTER_SIZE - 4
    return SectionCrcs(data_end_at + 9, _crc_of(stream, 0, data_end_at), summary_crc_at,
                       _crc_of(stream, summary_start, summary_crc_at))


def write_section_crcs(path: Path) -> None:
    """Fill the data-section and summary CRCs of a finished mcap file (rosbags leaves both 0). The file
    does not grow: only 8 bytes change in place."""
    with open(path, "r+b") as stream:
        crcs = section_crcs(stream)
        if crcs is None:
            return
        for at, crc in ((crcs.data_crc_at, crcs.data_crc), (crcs.summary_crc_at, crcs.summary_crc)):
            stream.seek(at)
            stream.write(crc.to_bytes(4, "little"))


class WholeWrites:
    """An unbuffered file whose ``write`` writes every byte or raises (a short write, which a filling
    disk makes, is continued; a write of nothing raises ENOSPC). Wraps a raw ``io.FileIO``; writes are
    ``os.write`` calls on its descriptor."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = os.write(self.raw.fileno(), view[done:])
            if not written:
                raise OSError(errno.ENOSPC, "no byte written")
            done += written
        return done

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def truncate(self, size: int) -> int:
        return self.raw.truncate(size)

    def close(self) -> None:
        self.raw.close()


@dataclass(frozen=True)
class _Written:
    """What the file holds up to its last whole chunk: what a failed chunk is rolled back to."""

    chunks: int
    channel_stats: dict[int, int]
    message_start_time: int
    message_end_time: int


class CrcMcapWriter(McapWriter):
    """rosbags' mcap storage with chunk, data-section and summary CRCs; a chunk that fails to write is
    cut off the file."""

    def __init__(self, path: Path, compression: Any) -> None:
        super().__init__(path, compression)
        self.bio = WholeWrites(self.bio.detach())  # type: ignore[assignment]  # detach flushes rosbags' header
        self.written = self._state()
        self.sealed = True  # False: the data-section and summary CRCs could not be written (left 0)

    def _state(self) -> _Written:
        return _Written(len(self.chunks), dict(self.channel_stats), self.message_start_time, self.message_end_time)

    def close_chunk(self) -> None:
        start = self.bio.tell()
        crc = crc32(self.chunk.bio.getvalue())
        try:
            super().close_chunk()
            end = self.bio.tell()
            self.bio.seek(start + CHUNK_CRC_OFFSET)
            self.bio.write(crc.to_bytes(4, "little"))
            self.bio.seek(end)
        except OSError:
            self._roll_back(start)
            raise
        self.written = self._state()

    def _roll_back(self, start: int) -> None:
        """Cut the failed chunk off the file and forget its messages: the file ends at its last whole chunk."""
        self.bio.truncate(start)
        self.bio.seek(start)
        del self.chunks[self.written.chunks:]
        self.channel_stats = {cid: self.written.channel_stats.get(cid, 0) for cid in self.channel_stats}
        self.message_start_time, self.message_end_time = self.written.message_start_time, self.written.message_end_time
        self.chunk = PendingChunk(2**63 - 1, 0, io.BytesIO(), defaultdict(list))

    def close(self, version: int, metadata: str) -> None:
        if self.chunk.bio.tell():
            self.close_chunk()
        start = self.bio.tell()
        try:
            super().close(version, metadata)
        except OSError:
            self.bio.truncate(start)  # no half summary: the file ends at its last whole chunk
            raise
        try:
            write_section_crcs(self.path)
        except OSError:
            # 8 bytes overwritten in place rarely fail; if they do, the bag is finished and valid without
            # them (a CRC of 0 means "not stored" to every reader), where raising would lose it.
            self.sealed = False


class CrcBagWriter(Writer):
    """rosbags' Writer on :class:`CrcMcapWriter`; after a failed write its counts are those of the file."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: CrcMcapWriter}

    def counts_from_file(self) -> None:
        """Message counts and times as the file holds them, after a chunk that failed was cut off."""
        written = cast(CrcMcapWriter, self.storage).written
        self.counts = {cid: written.channel_stats.get(cid, 0) for cid in self.counts}
        self.min_timestamp, self.max_timestamp = written.message_start_time, written.message_end_time

    def write(self, connection: Any, timestamp: int, data: bytes | memoryview) -> None:
        try:
            super().write(connection, timestamp, data)
        except OSError:
            self.counts_from_file()
            raise


class RecordingCut(Exception):
    """Writing a bag failed part-way (a full disk): the bag was finished with what was written before,
    or (``finished`` False) could not be finished either."""

    def __init__(self, path: Path, cause: OSError, finished: bool, messages: int) -> None:
        self.path, self.cause, self.finished, self.messages = path, cause, finished, messages
        state = (f"the bag is finished with the {messages} messages written before"
                 if finished else "the bag could not be finished and is not readable")
        super().__init__(f"writing {path} failed ({cause.strerror or cause}): {state}")


@contextmanager
def mcap_bag(path: Path) -> Iterator[CrcBagWriter]:
    """A new rosbag2 mcap bag at ``path`` with every CRC, closed (finished) when the block ends, however
    it ends; an OSError in the block or in closing is raised as :class:`RecordingCut`."""
    writer = CrcBagWriter(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        yield writer
    except OSError as error:
        raise (_finish(writer, path, error) or error) from None
    except BaseException:
        # Ctrl-C or a fault while recording: what was written stays a readable bag.
        _finish(writer, path, None)
        raise
    cut = _finish(writer, path, None)
    if cut is not None:
        raise cut from None


def _finish(writer: CrcBagWriter, path: Path, cause: OSError | None) -> RecordingCut | None:
    """Close ``writer``; the RecordingCut describing the bag when ``cause`` or closing failed, else None."""
    failure = cause
    for _ in range(2):
        try:
            writer.close()
        except OSError as error:
            failure = failure or error
            if writer.storage is None:  # the mcap is finished but metadata.yaml could not be written
                break
            # The last chunk failed and was cut off the file: the summary of those before it may still fit.
            writer.counts_from_file()
            continue
        return None if failure is None else RecordingCut(path, failure, True, sum(writer.counts.values()))
    writer.abort()
    assert failure is not None  # only a failed close leaves the loop
    return RecordingCut(path, failure, False, 0)
