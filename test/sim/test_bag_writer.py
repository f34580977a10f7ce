"""The recorder's bags can be trusted (auras_ros/eval/bag_writer.py): every mcap chunk, the data section
and the summary carry their CRCs, and a flipped bit is refused by the bag check the player and bag_eval
use; a disk that fills while recording ends ``python -m auras_ros.eval.record`` with one line and exit
status 1, the bag finished (summary and metadata.yaml) with the messages written before, every byte of it
valid."""

from __future__ import annotations

import errno
import os
import shutil
import struct
from pathlib import Path

import pytest
import yaml
from mcap.records import Chunk, Footer
from mcap.stream_reader import StreamReader

from auras_ros.eval.bag import BagError, check_bag, record
from auras_ros.eval.bag_writer import CHUNK_CRC_OFFSET, section_crcs
from auras_ros.eval.record import main as record_main
from auras_ros.eval.task_config import TaskConfig

# 6 episodes (about 1.7 MB): more than rosbags' 1 MiB chunk, so at least two chunks.
EPISODES, MAX_FRAMES = 6, 40


def _records(mcap: Path) -> list:
    """Every record of the file in order, chunk and data-section CRCs checked: a reader that trusts nothing
    but the bytes."""
    with open(mcap, "rb") as stream:
        return list(StreamReader(stream, skip_magic=False, emit_chunks=True, validate_crcs=True).records)


def _chunk_crcs(mcap: Path) -> list[int]:
    data = mcap.read_bytes()
    return [struct.unpack_from("<I", data, offset + CHUNK_CRC_OFFSET)[0] for offset in _offsets(data, 0x06)]


def _offsets(data: bytes, opcode: int) -> list[int]:
    """Where the records with ``opcode`` start, walking the file record by record."""
    offsets, position = [], 8  # after the magic
    while position < len(data) - 8:
        if data[position] == opcode:
            offsets.append(position)
        if data[position] == 0x02:  # the footer
            break
        position += 9 + struct.unpack_from("<Q", data, position + 1)[0]
    return offsets


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bag = tmp_path_factory.mktemp("recorded") / "bag"
    record(bag, 1, 0, TaskConfig(max_frames=15))
    return bag


def test_the_recorders_bags_carry_every_crc(recorded: Path) -> None:
    mcap = next(recorded.glob("*.mcap"))
    crcs = _chunk_crcs(mcap)
    assert crcs and all(crcs)
    with open(mcap, "rb") as stream:
        sections = section_crcs(stream)
    data = mcap.read_bytes()
    stored = [struct.unpack_from("<I", data, at)[0] for at in (sections.data_crc_at, sections.summary_crc_at)]
    assert stored == [sections.data_crc, sections.summary_crc] and all(stored)
    assert isinstance(_records(mcap)[-1], Footer)
    assert check_bag(recorded).images > 0


@pytest.mark.parametrize("where", ["chunk", "summary"])
def test_one_flipped_bit_in_the_recorders_bag_is_refused(recorded: Path, where: str, tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(recorded, bag)
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    # Inside the chunk: image pixels, which still decode; in the summary: the Statistics record's message count.
    chunk, statistics = _offsets(bytes(data), 0x06)[0], _offsets(bytes(data), 0x0B)[0]
    data[chunk + (statistics - chunk) // 4 if where == "chunk" else statistics + 9] ^= 0x01
    mcap.write_bytes(data)
    with pytest.raises(BagError, match="corrupt.*(checksum|CRC)"):
        check_bag(bag)


@pytest.fixture
def disk_of(monkeypatch: pytest.MonkeyPatch):
    """A disk with room for ``capacity`` bytes of the .mcap file: a write past it writes what fits, then
    raises ENOSPC, as a full filesystem does; cutting the file gives the room back."""
    real_write = os.write

    def install(capacity: int) -> None:
        def write(fd: int, data) -> int:
            if not os.readlink(f"/proc/self/fd/{fd}").endswith(".mcap"):
                return real_write(fd, data)
            room = capacity - os.lseek(fd, 0, os.SEEK_CUR)
            if room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, bytes(memoryview(data)[:room]))
        monkeypatch.setattr(os, "write", write)
    return install


def _record(out: Path) -> int:
    return record_main(["--episodes", str(EPISODES), "--out", str(out), "--max-frames", str(MAX_FRAMES)])


def test_a_disk_full_while_recording_gives_one_line_and_a_finished_bag(tmp_path: Path, disk_of, capsys) -> None:
    assert _record(tmp_path / "whole") == 0
    whole = check_bag(tmp_path / "whole")
    assert len(_chunk_crcs(next((tmp_path / "whole").glob("*.mcap")))) >= 2
    capsys.readouterr()

    disk_of(int(1.2 * 2**20))  # room for the first chunk, not the second
    out = tmp_path / "bag"
    assert _record(out) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"record: writing {out} failed (No space left on device): the bag is finished with the" in err
    mcap = next(out.glob("*.mcap"))
    records = _records(mcap)  # every byte in order: no half-written chunk left in the file
    assert isinstance(records[-1], Footer) and sum(isinstance(r, Chunk) for r in records) >= 1
    info = check_bag(out)
    assert 0 < info.images < whole.images
    metadata = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["message_count"] == sum(info.counts.values())
    assert f"with the {metadata['message_count']} messages written before" in err


def test_a_disk_too_full_to_finish_the_bag_says_so(tmp_path: Path, disk_of, capsys) -> None:
    disk_of(2000)  # not even the summary fits
    out = tmp_path / "bag"
    assert _record(out) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "No space left on device): the bag could not be finished and is not readable" in err
