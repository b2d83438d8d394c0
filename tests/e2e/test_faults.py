"""Each fault kind at 20%, and each of Mercado Libre's own conditions over a run: nothing is lost or
sent twice, 429s wait, and no message ends `failed` for a temporary condition."""

from __future__ import annotations

import pytest

from postventa.store.engine import Database
from tests.e2e.conftest import World
from tests.e2e.faults import (
    ALL_KINDS,
    PERMANENT_ANSWERS,
    REJECTED_REASON,
    late_moderated,
    run_faults,
)
from tests.e2e.report import report, scale

MESSAGES_PER_KIND = scale("POSTVENTA_FAULT_MESSAGES", 12)  # scripts/fault_run uses 300


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_fault_kind_loses_and_duplicates_nothing(
    world: World, kind: str, database_url: str, database: Database
):
    # A late verdict is read about every 2 s (the inbound poll's budget): those messages need longer.
    timeout = max(120.0, MESSAGES_PER_KIND * 1.0, late_moderated(MESSAGES_PER_KIND) * 4.0)
    result = await run_faults(world, kind, MESSAGES_PER_KIND, timeout=timeout, database=database)
    report(result.to_report(database_url.split(":", 1)[0]))

    assert result.missing == 0, dict(result.failed_codes)
    assert result.duplicates == 0
    assert result.failed_temporary == 0, dict(result.failed_codes)
    assert result.failed_but_applied == 0
    assert result.retry_after_violations == 0
    if kind in PERMANENT_ANSWERS:
        assert set(result.statuses) <= {"sent", "failed"}
        assert set(result.failed_codes) <= PERMANENT_ANSWERS[kind]
    elif kind == "late_moderation":
        assert result.statuses == {
            "sent": MESSAGES_PER_KIND - result.expected_moderated,
            "moderated": result.expected_moderated,
        }
        assert result.moderation_reasons == {REJECTED_REASON: result.expected_moderated}
        assert result.seen_pending == late_moderated(MESSAGES_PER_KIND)
    else:
        assert result.statuses == {"sent": MESSAGES_PER_KIND}
    if kind in ("revoked_grant", "blocks"):
        assert result.waited > 0  # the condition held some messages back...
        assert result.changed_while_waiting == 0  # ...and they waited queued, neither failed nor sent
    if kind == "revoked_grant":
        assert result.link_status_while_revoked == "needs_relink"
