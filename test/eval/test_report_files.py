"""Reports and result JSON are written whole or not at all (auras_ros/eval/files.py): a disk that fills
while one is written leaves the previous file as it was and no partial or temporary file, and the command
says so in one line with exit status 1."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from auras_ros.eval import report
from auras_ros.eval.results import load_evaluation, write_json

SHIPPED = Path(report.__file__).parent / "results"


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text files fill the disk half-way: half the text lands in the file, then ENOSPC."""
    real_write_text = Path.write_text

    def write_text(self: Path, data: str, *args, **kwargs) -> int:
        real_write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Path, "write_text", write_text)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    shutil.copy(SHIPPED / "ar.json", tmp_path)
    (tmp_path / "ar_report.md").write_text("the previous report\n")
    return tmp_path


def test_json_on_a_full_disk_keeps_the_previous_file_whole(results: Path, full_disk: None) -> None:
    before = (results / "ar.json").read_text()
    with pytest.raises(OSError) as error:
        write_json(results / "ar.json", load_evaluation(results / "ar.json"))
    assert error.value.errno == errno.ENOSPC and error.value.filename == str(results / "ar.json")
    assert (results / "ar.json").read_text() == before and _leftovers(results) == []


def test_a_full_disk_while_writing_the_report_gives_one_line(results: Path, full_disk: None, monkeypatch, capsys) -> None:
    # The plots fit (they are not text), the Markdown does not.
    assert report.main(["--policy", "ar", "--results", str(results)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"report: could not write {results / 'ar_report.md'} (No space left on device); files written before it "
        "are whole and no partial file was left"]
    assert (results / "ar_report.md").read_text() == "the previous report\n" and _leftovers(results) == []
    monkeypatch.undo()  # room again: the same command writes the whole report in place
    assert report.main(["--policy", "ar", "--results", str(results)]) == 0
    assert (results / "ar_report.md").read_text().startswith("# ") and _leftovers(results) == []
