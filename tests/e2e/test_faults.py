"""Each fault kind at 20%: every message ends sent, reaches Mercado Libre exactly once, 429s wait."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World
from tests.e2e.faults import FAULT_KINDS, run_faults
from tests.e2e.report import report, scale

MESSAGES_PER_KIND = scale("POSTVENTA_FAULT_MESSAGES", 12)  # scripts/fault_run uses 300


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
async def test_fault_kind_loses_and_duplicates_nothing(world: World, kind: str, database_url: str):
    result = await run_faults(world, kind, MESSAGES_PER_KIND, timeout=max(120.0, MESSAGES_PER_KIND * 1.0))
    report(
        {
            "run": "faults",
            "backend": database_url.split(":", 1)[0],
            "kind": kind,
            "messages": result.messages,
            "statuses": dict(result.statuses),
            "faults_injected": result.faults_injected,
            "duplicates": result.duplicates,
            "missing": result.missing,
            "retry_after_violations": result.retry_after_violations,
            "seconds": round(result.seconds, 1),
        }
    )

    assert result.statuses == {"sent": MESSAGES_PER_KIND}
    assert result.missing == 0
    assert result.duplicates == 0
    assert result.retry_after_violations == 0
