"""Shared-memory transport: tensors lie in a bounded pool of slots in one /dev/shm file owned by the
publisher; the message carries only the segment name, the slot offset and the slot's write count.

Segment layout (little-endian):
    [0, 64)                 header: magic b"AURASHM1", version u32, slot_count u32, slot_bytes u64,
                            data_start u64
    [64, 64 + 8 * count)    one u64 write counter per slot
    [data_start, ...)       slot k at data_start + k * stride, stride = slot_bytes rounded up to 64

Seqlock per slot: the writer makes the counter odd, copies, makes it even and sends that even value
as shm_generation. A reader checks the counter equals shm_generation before and after copying the
tensor out; any difference means the slot was (being) rewritten → PayloadOverwritten, never torn
data. The slots are reused round-robin, so a reader has (slot_count - 1) publications of time.

Why files in /dev/shm with mmap rather than multiprocessing.shared_memory: its resource_tracker
unlinks segments a reader merely attached to when that reader exits, and its names carry no owner.
Here a name is auras_<owner pid>_<random hex>, so cleanup_stale_segments() can remove the segments
of dead owners (after a SIGKILL, which skips the owner's own unlink at close() or exit).
The files are created 0600: publisher and subscribers must run as the same user.
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import secrets
import stat
import struct
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.transport.payload import (
    SHM, PayloadFields, PayloadOverwritten, PayloadUnavailable, check_header, fill_header, from_bytes, host_bytes)

SHM_DIR = "/dev/shm"
PREFIX = "auras"
_NAME = re.compile(rf"^{PREFIX}_(\d+)_[0-9a-f]+$")
_MAGIC = b"AURASHM1"
_VERSION = 1
_HEADER = struct.Struct("<8sIIQQ")
_HEADER_BYTES = 64
_COUNTER = struct.Struct("<Q")
_ALIGN = 64


class SegmentMissing(PayloadUnavailable):
    """The named segment does not exist here: its owner closed it or exited, or it lives on another host."""

    def __init__(self, shm_name: str) -> None:
        self.shm_name = shm_name
        super().__init__(f"shared-memory segment {shm_name!r} does not exist on this host "
                         "(its publisher closed it, or runs on another host: use the inline transport)")


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


class _Fence:
    """A full memory barrier between the plain loads/stores before and after it.

    A lock release followed by an acquire: nothing before the release moves after it, nothing after
    the acquire moves before it, and release→acquire stay ordered. Free on x86-64 (TSO already keeps
    the seqlock's order); needed on weakly ordered CPUs (aarch64 robots), where Python offers no fence.
    Use from one thread at a time (callers hold their own lock).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def __call__(self) -> None:
        self._lock.release()
        self._lock.acquire()


@dataclass(frozen=True)
class _Layout:
    slot_count: int
    slot_bytes: int
    data_start: int

    @property
    def stride(self) -> int:
        return _round_up(self.slot_bytes, _ALIGN)

    @property
    def size(self) -> int:
        return self.data_start + self.slot_count * self.stride

    @staticmethod
    def for_pool(slot_count: int, slot_bytes: int) -> "_Layout":
        return _Layout(slot_count, slot_bytes, _round_up(_HEADER_BYTES + _COUNTER.size * slot_count, _ALIGN))

    def counter_offset(self, slot: int) -> int:
        return _HEADER_BYTES + _COUNTER.size * slot

    def slot_offset(self, slot: int) -> int:
        return self.data_start + slot * self.stride


def _release_segment(mm: mmap.mmap, fd: int, path: str, owner_pid: int) -> None:
    # A forked child inherits the pool object; only the creating process may unlink.
    if os.getpid() == owner_pid:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os.close(fd)
    try:
        mm.close()
    except BufferError:  # a view into the mapping is still alive; the mapping goes with it
        pass


class ShmPool:
    """The publisher's bounded pool: slot_count slots of slot_bytes each in one segment, reused round-robin.

    Unlinked on close(), when garbage collected, and at interpreter exit (weakref.finalize).
    A CUDA tensor is copied to host memory on pack.
    """

    def __init__(self, slot_count: int = 4, slot_bytes: int = 8 << 20, shm_dir: str = SHM_DIR) -> None:
        if not isinstance(slot_count, int) or slot_count < 2:
            # One slot would be rewritten while a reader may still copy the previous tensor.
            raise ConfigError("slot_count", slot_count, "an integer >= 2")
        positive_int("slot_bytes", slot_bytes)
        self.layout = _Layout.for_pool(slot_count, slot_bytes)
        self.name = f"{PREFIX}_{os.getpid()}_{secrets.token_hex(6)}"
        self.path = os.path.join(shm_dir, self.name)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserve the memory now: a sparse tmpfs file that cannot grow later kills the writer with SIGBUS.
            os.posix_fallocate(fd, 0, self.layout.size)
            self._mm = mmap.mmap(fd, self.layout.size)
        except OSError as e:
            os.close(fd)
            os.unlink(self.path)
            if e.errno == errno.ENOSPC:
                raise ConfigError("slot_count*slot_bytes", self.layout.size,
                                  f"at most the free space of {shm_dir} (in Docker: raise --shm-size)") from e
            raise
        self._fd = fd  # kept: each pack checks the file still has its size
        self._write_header()
        self._next_slot = 0
        self._lock = threading.Lock()
        self._fence = _Fence()
        self.truncated = 0  # packs that found the segment truncated by another process and restored it
        self._written = [0] * slot_count  # each slot's write count, kept here too: a truncation zeroes the file's
        self._finalizer = weakref.finalize(self, _release_segment, self._mm, fd, self.path, os.getpid())

    def _write_header(self) -> None:
        layout = self.layout
        _HEADER.pack_into(self._mm, 0, _MAGIC, _VERSION, layout.slot_count, layout.slot_bytes, layout.data_start)

    def _restore_if_truncated(self) -> None:
        """Writing into pages another process truncated away would kill this one with SIGBUS: give the
        file its size back first (zeroed pages: the header is written again, counters start over)."""
        if os.fstat(self._fd).st_size != self.layout.size:
            os.posix_fallocate(self._fd, 0, self.layout.size)
            self._write_header()
            for slot in range(self.layout.slot_count):
                # Past every count already sent: no earlier payload matches a slot's zeroed bytes.
                self._written[slot] += 2
                _COUNTER.pack_into(self._mm, self.layout.counter_offset(slot), self._written[slot])
            self.truncated += 1

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def pack(self, tensor: torch.Tensor, payload: PayloadFields) -> None:
        src = host_bytes(tensor, "shm pack")
        nbytes = fill_header(payload, tensor, SHM, "shm pack")
        if nbytes > self.layout.slot_bytes:
            raise InputError("nbytes", "shm pack", f"at most the slot size, {self.layout.slot_bytes} bytes "
                             "(raise the slot_bytes parameter)", nbytes)
        with self._lock:
            if self.closed:
                raise RuntimeError(f"shared-memory pool {self.name} is closed")
            self._restore_if_truncated()
            slot = self._next_slot
            self._next_slot = (slot + 1) % self.layout.slot_count
            counter_at = self.layout.counter_offset(slot)
            offset = self.layout.slot_offset(slot)
            generation = self._written[slot]
            _COUNTER.pack_into(self._mm, counter_at, generation + 1)  # odd: being written
            self._fence()
            self._mm[offset:offset + nbytes] = memoryview(src.numpy())
            self._fence()
            _COUNTER.pack_into(self._mm, counter_at, generation + 2)
            self._written[slot] = generation + 2
        payload.shm_name = self.name
        payload.shm_offset = offset
        payload.shm_generation = generation + 2

    def close(self) -> None:
        self._finalizer()


class SegmentTruncated(InputError):
    """A segment shorter than its own layout says: another process truncated it. Read through a mapping,
    the missing pages would kill the reader with SIGBUS; read with pread, they are a short read."""

    def __init__(self, shm_name: str, where: str, expected: int, size: int) -> None:
        super().__init__("shm segment size", where, f"{expected} bytes (its layout)", f"{size} bytes in {shm_name}")


def _read(fd: int, nbytes: int, offset: int, name: str, expected: int, where: str) -> np.ndarray:
    """``nbytes`` at ``offset`` of the segment, copied with pread: a file truncated meanwhile gives a
    short read (SegmentTruncated), never the SIGBUS of a mapping's vanished pages."""
    buffer = np.empty(nbytes, np.uint8)
    if nbytes and os.preadv(fd, [buffer], offset) != nbytes:
        raise SegmentTruncated(name, where, expected, os.fstat(fd).st_size)
    return buffer


class _Segment:
    """A reader's handle on one publisher's segment (an open file, read with pread, never mapped: see
    SegmentTruncated), with its layout checked."""

    def __init__(self, name: str, shm_dir: str, where: str) -> None:
        # The name comes from a message, and any local user can create a file under that name:
        # never follow a link, never block (a FIFO's open would wait for a writer forever), and map
        # only a regular file of our own user (what ShmPool creates).
        try:
            self.fd = os.open(os.path.join(shm_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            raise SegmentMissing(name) from None
        except OSError as error:  # ELOOP: a symbolic link; EACCES: not ours to read
            raise InputError("shm_name", where, "a regular file of this user in " + shm_dir,
                             f"{name} ({error.strerror})") from None
        try:
            status = os.fstat(self.fd)
            if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid():
                kind = "a regular file" if stat.S_ISREG(status.st_mode) else "not a regular file"
                raise InputError("shm_name", where, f"a regular file of this user (uid {os.geteuid()})",
                                 f"{name} ({kind}, owner uid {status.st_uid})")
            size = status.st_size
            if size < _HEADER_BYTES:
                raise InputError("shm_name", where, "an auras shared-memory segment", f"{name} ({size} bytes)")
            self.name = name
            header = _read(self.fd, _HEADER.size, 0, name, _HEADER_BYTES, where)
            magic, version, slot_count, slot_bytes, data_start = _HEADER.unpack_from(header, 0)
            self.layout = _Layout(slot_count, slot_bytes, data_start)
            if (magic, version) != (_MAGIC, _VERSION) or self.layout != _Layout.for_pool(slot_count, slot_bytes) \
                    or self.layout.size != size:
                raise InputError("shm_name", where, f"an auras shared-memory segment, version {_VERSION}", name)
        except BaseException:
            os.close(self.fd)
            raise

    def unlinked(self) -> bool:
        return os.fstat(self.fd).st_nlink == 0

    def check_size(self, where: str) -> None:
        """SegmentTruncated unless the file still has its layout's size (checked before each read)."""
        size = os.fstat(self.fd).st_size
        if size != self.layout.size:
            raise SegmentTruncated(self.name, where, self.layout.size, size)

    def read(self, nbytes: int, offset: int, where: str) -> np.ndarray:
        return _read(self.fd, nbytes, offset, self.name, self.layout.size, where)

    def close(self) -> None:
        os.close(self.fd)


class ShmReader:
    """Copies tensors out of publishers' segments; caches up to max_segments mappings (oldest dropped)."""

    def __init__(self, shm_dir: str = SHM_DIR, max_segments: int = 8) -> None:
        self.shm_dir = shm_dir
        self.max_segments = max_segments
        self._segments: OrderedDict[str, _Segment] = OrderedDict()
        self._lock = threading.Lock()
        self._fence = _Fence()
        self.truncated = 0  # reads refused because their segment had been truncated (for /diagnostics)

    def _segment(self, name: str, where: str) -> _Segment:
        if not _NAME.match(name):  # also keeps a received name from pointing outside shm_dir
            raise InputError("shm_name", where, f"{PREFIX}_<pid>_<hex>", name)
        segment = self._segments.get(name)
        if segment is not None and segment.unlinked():
            # Its owner closed it: let the memory go instead of keeping it mapped.
            self._segments.pop(name).close()
            raise SegmentMissing(name)
        if segment is None:
            segment = _Segment(name, self.shm_dir, where)
            self._segments[name] = segment
            if len(self._segments) > self.max_segments:
                self._segments.popitem(last=False)[1].close()
        self._segments.move_to_end(name)
        return segment

    def unpack(self, payload: PayloadFields) -> torch.Tensor:
        """A copy of the tensor in the payload's slot; PayloadOverwritten if the slot was reused."""
        where = "shm unpack"
        dtype, shape, nbytes = check_header(payload, where)
        if len(payload.data) != 0:
            raise InputError("data", where, "empty (the bytes lie in shared memory)", f"{len(payload.data)} bytes")
        generation = payload.shm_generation
        if generation < 2 or generation % 2:
            raise InputError("shm_generation", where, "an even write count >= 2", generation)
        with self._lock:
            segment = self._segment(payload.shm_name, where)
            try:
                return self._read_slot(segment, payload, where, dtype, shape, nbytes, generation)
            except SegmentTruncated:
                self.truncated += 1
                self._segments.pop(payload.shm_name).close()  # its next use opens and checks it anew
                raise

    def _read_slot(self, segment: _Segment, payload: PayloadFields, where: str, dtype: torch.dtype,
                   shape: tuple[int, ...], nbytes: int, generation: int) -> torch.Tensor:
        """The seqlock read of one slot: its write count, its bytes, its write count again."""
        layout = segment.layout
        offset = payload.shm_offset
        slot, misalign = divmod(offset - layout.data_start, layout.stride)
        if offset < layout.data_start or misalign or slot >= layout.slot_count:
            raise InputError("shm_offset", where, f"the start of one of {layout.slot_count} slots "
                             f"({layout.data_start} + k * {layout.stride})", offset)
        if nbytes > layout.slot_bytes:
            raise InputError("nbytes", where, f"at most the slot size, {layout.slot_bytes} bytes", nbytes)
        counter_at = layout.counter_offset(slot)
        segment.check_size(where)
        (before,) = _COUNTER.unpack_from(segment.read(_COUNTER.size, counter_at, where), 0)
        if before != generation:
            raise PayloadOverwritten(payload.shm_name, offset, generation, before)
        self._fence()
        copy = segment.read(nbytes, offset, where)
        self._fence()
        (after,) = _COUNTER.unpack_from(segment.read(_COUNTER.size, counter_at, where), 0)
        if after != generation:
            raise PayloadOverwritten(payload.shm_name, offset, generation, after)
        return from_bytes(copy, 0, dtype, shape, nbytes)

    def close(self) -> None:
        with self._lock:
            while self._segments:
                self._segments.popitem()[1].close()


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # A zombie has exited (and will never unlink); its pid still answers kill(0).
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def cleanup_stale_segments(shm_dir: str = SHM_DIR) -> list[str]:
    """Remove the auras segments whose owner process is dead; return their names.

    Owners are recognised by the pid in the name, so run this in the PID namespace the publishers
    ran in (a container sharing /dev/shm with another namespace would see wrong pids). A reused pid
    keeps a dead owner's segment until that pid is free again: the safe direction.
    """
    removed = []
    for name in sorted(os.listdir(shm_dir)):
        match = _NAME.match(name)
        if match and not _owner_alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(shm_dir, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed
