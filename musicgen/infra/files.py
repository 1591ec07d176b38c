"""Files written whole or not at all: a temporary file, then a rename."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from musicgen.errors import storage_error


def write_json(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=1).encode())


def write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write data (bytes, or chunks of bytes) to a temporary file beside path, then rename over it; a full disk
    or a read-only folder is a StorageError and leaves neither a temporary file nor half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            for chunk in [data] if isinstance(data, (bytes, bytearray)) else data:
                fh.write(chunk)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise storage_error(path, e) from None
