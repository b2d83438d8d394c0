"""The long-running processes' garbage collection: what start-up built is frozen, and the young
generation is collected at YOUNG_GENERATION_THRESHOLD (in a process of its own: freezing is for
good)."""

from __future__ import annotations

import json
import subprocess
import sys

from postventa.gc_tuning import YOUNG_GENERATION_THRESHOLD

PROBE = """
import gc, json
from postventa.gc_tuning import freeze_startup_objects
before = gc.get_threshold()
freeze_startup_objects()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    output = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    seen = json.loads(output)

    assert seen["frozen"] > 0
    assert seen["after"][0] == YOUNG_GENERATION_THRESHOLD > seen["before"][0]
    assert seen["after"][1:] == seen["before"][1:]  # the older generations as Python has them
