"""Garbage collection in the long-running processes (`serve`, `worker`)."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Keep what start-up built out of the collector's walks.

    A process starts with several hundred thousand tracked objects (FastAPI's and pydantic's models,
    SQLAlchemy's tables and compiled statements, the routes), alive until it exits. Each full
    collection walked all of them with the event loop stopped: 50–90 ms, several times a minute
    under load, which was the slowest percent of sends (docs/performance.md). Objects made after
    this are collected as usual. Not for processes that build many apps (the tests): what is
    frozen is never freed.
    """
    gc.collect()
    gc.freeze()
