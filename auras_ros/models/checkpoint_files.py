"""Reading checkpoint files so that a damaged one says which file and what was expected: a
:class:`ConfigError` (a node turns it into one line and exit 2), never a reader's traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from auras_ros.core.errors import ConfigError

T = TypeVar("T")


def read_json_object(path: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The JSON object in ``path``, which must hold every one of ``keys``."""
    expected = "a JSON object with " + ", ".join(repr(k) for k in keys)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError("checkpoint file", str(path), f"{expected} ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise ConfigError("checkpoint file", str(path), f"{expected}, not a JSON {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ConfigError("checkpoint file", str(path), f"{expected} (missing {', '.join(map(repr, missing))})")
    return data


def read_weights(path: Path, read: Callable[[Path], T], expected: str) -> T:
    """``read(path)``; whatever a damaged file makes the reader raise (truncated zip, pickle or
    safetensors header, ...) becomes a ConfigError naming the file."""
    try:
        return read(Path(path))
    except Exception as error:  # noqa: BLE001 - each reader fails differently on a damaged file; all mean the same
        reason = str(error).splitlines()[0][:200] if str(error) else ""
        raise ConfigError("checkpoint file", str(path), f"{expected} ({type(error).__name__}: {reason})") from None
