"""Scale knobs and a report file for the long runs (scripts/fault_run and scripts/crash_run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def scale(name: str, default: int) -> int:
    """A count from the environment (the scripts raise it), or the CI default."""
    return int(os.environ.get(name, default))


def report(record: dict[str, Any]) -> None:
    """Append one JSON line to $POSTVENTA_RUN_REPORT when a script asked for it."""
    target = os.environ.get("POSTVENTA_RUN_REPORT")
    if target:
        with Path(target).open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
