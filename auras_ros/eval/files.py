"""Result files written whole or not at all, ROS-free: each goes to a temporary file in its own directory,
then ``os.replace`` puts it in place (atomic on one filesystem). A reader sees the previous file or the
whole new one; a write that fails (a full disk) leaves neither a partial file nor the temporary one."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` by calling ``write`` with a temporary path beside it, then rename that over ``path``.
    An OSError names ``path`` (not the temporary file) and leaves ``path`` as it was."""
    path = Path(path)
    # Created by ``write`` with the usual mode (umask applied), unlike mkstemp's 0600.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    replace_atomically(path, lambda temporary: temporary.write_text(text))


def write_failed(program: str, error: OSError) -> int:
    """Say in one line that a result file could not be written (a full disk, no permission); exit status 1."""
    print(f"{program}: could not write {error.filename or 'a result file'} ({error.strerror or error}); files "
          "written before it are whole and no partial file was left", file=sys.stderr)
    return 1
