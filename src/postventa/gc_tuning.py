"""Garbage collection in the long-running processes (`serve`, `worker`)."""

from __future__ import annotations

import gc

# Python collects its youngest generation once 700 more container objects were made than freed. A
# server under load holds more than that at any moment (each connection's parser and task, the
# requests in flight), objects that reference counting frees a moment later: at 700, 60,000 template
# sends ran 3,822 young collections (one every 16 sends, 78 µs each), 347 of the middle generation
# and 31 full ones (1.5 ms each), 3% of the CPU. At 10,000 the same sends ran one young collection
# (1 ms) and none of the others (bench.send, docs/performance.md). What only the collector frees
# (objects in cycles) is still freed, once 10,000 of them have piled up.
YOUNG_GENERATION_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Keep what start-up built out of the collector's walks, and collect the young objects less
    often (YOUNG_GENERATION_THRESHOLD).

    A process starts with several hundred thousand tracked objects (FastAPI's and pydantic's models,
    SQLAlchemy's tables and compiled statements, the routes), alive until it exits. Each full
    collection walked all of them with the event loop stopped: 50–90 ms, several times a minute
    under load, which was the slowest percent of sends (docs/performance.md). Objects made after
    this are collected as usual. Not for processes that build many apps (the tests): what is
    frozen is never freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
