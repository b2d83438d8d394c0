"""Sampling profiles of a running server with py-spy, summarised as the functions that cost most.

py-spy is not a dependency of the project: `.venv/bin/pip install py-spy` once, then pass
`--profile DIR` to a benchmark. The raw collapsed stacks (one line per distinct stack, with its
sample count) are kept in DIR for flame graphs (`py-spy` or speedscope read them); the summary
lists, for the busiest frames, the share of samples they appear in (inclusive) and sit on top of
(self).

    python -m bench.profile DIR/postventa-sqlite.txt   # summarise a saved profile again
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
SAMPLES_PER_SECOND = 250
# "function (path/to/file.py:123)" → "function (file path without site-packages prefix)"
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
_TRIM = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def available() -> bool:
    """Whether py-spy can be run."""
    return Path(PY_SPY).exists()


def start(pid: int, seconds: float | None, output: Path) -> subprocess.Popen[bytes]:
    """Record `pid` (all its threads, without pausing it) for `seconds`, or until `finish`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    duration = ["--duration", str(max(1, round(seconds)))] if seconds is not None else []
    command = [
        PY_SPY,
        "record",
        "--pid",
        str(pid),
        *duration,
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--format",
        "raw",
        "--nonblocking",
        "--threads",
        "--output",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(recorder: subprocess.Popen[bytes], output: Path) -> dict[str, Any]:
    """Stop a recording (SIGINT makes py-spy write what it has) and summarise it."""
    if recorder.poll() is None:
        recorder.send_signal(signal.SIGINT)
    try:
        recorder.wait(timeout=60)
    except subprocess.TimeoutExpired:
        recorder.kill()
        recorder.wait()
    if not output.exists():
        return {"path": str(output), "error": "py-spy wrote no profile"}
    return {"path": str(output), **summarise(output)}


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = _TRIM.sub("", match.group("file"))
    return f"{match.group('function')} ({file})"


def summarise(collapsed: Path, top: int = 25) -> dict[str, Any]:
    """Where the busy samples were: on top of the stack (self) by package and by frame, and the
    project's own frames they passed through (inclusive), as shares of the busy samples.

    Samples of idle threads (the event loop waiting in select/epoll, thread pools waiting for work)
    are left out, so the shares are of the time the process was busy.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    own_by_package: Counter[str] = Counter()
    total = idle = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame_name(frame) for frame in stack.split(";") if frame and not frame.startswith("thread")
        ]
        if not frames:
            continue
        leaf = frames[-1]
        if _is_idle(leaf):
            idle += count
            continue
        total += count
        own[leaf] += count
        own_by_package[_package(leaf)] += count
        for name in set(frames):
            if name.split(" (", 1)[-1].startswith("postventa/"):
                inclusive[name] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": name, "percent": round(100 * count / total, 1)}
            for name, count in counter.most_common(top)
        ]

    return {
        "busy_samples": total,
        "idle_samples": idle,
        "self_by_package": shares(own_by_package) if total else [],
        "self": shares(own) if total else [],
        "inclusive_postventa": shares(inclusive) if total else [],
    }


def _package(frame: str) -> str:
    """The top-level package (or standard-library module) of a frame's file."""
    file = frame.rsplit(" (", 1)[-1].rstrip(")")
    first = file.split("/", 1)[0]
    return first.removesuffix(".py") if first else file


def _is_idle(leaf: str) -> bool:
    return any(
        marker in leaf
        for marker in (
            "select (selectors.py)",
            "poll (selectors.py)",
            "wait (threading.py)",
            "_worker (concurrent",
        )
    ) or leaf.startswith(("run_forever", "_run_once (asyncio"))


def main() -> None:
    """Print the summary of a saved profile."""
    for path in sys.argv[1:]:
        summary = summarise(Path(path))
        print(f"{path}: {summary['busy_samples']} busy samples, {summary['idle_samples']} idle")  # noqa: T201
        for kind in ("self_by_package", "self", "inclusive_postventa"):
            print(f"  top {kind}:")  # noqa: T201
            for entry in summary[kind]:
                print(f"    {entry['percent']:5.1f}%  {entry['frame']}")  # noqa: T201


if __name__ == "__main__":
    main()
