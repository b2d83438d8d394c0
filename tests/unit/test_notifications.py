"""The notification rules: what settles one, when it is retried, what it costs, what is dropped."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.domain.notifications import (
    MAX_NOTIFICATION_ATTEMPTS,
    calls_of,
    calls_per_second,
    dropped_reason,
    notification_retry_at,
    pending_over_bound,
    retention_cutoff,
    settled_by_answer,
)

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "settled"),
    [(404, True), (403, True), (400, True), (429, False), (500, False), (None, False), (401, False)],
)
def test_an_answer_asking_again_cannot_change_settles_the_notification(status, settled):
    assert settled_by_answer(status) is settled


def test_retries_come_later_each_time_and_stop_after_the_last_attempt():
    delays = [notification_retry_at(attempt, NOW) for attempt in range(1, MAX_NOTIFICATION_ATTEMPTS)]
    assert all(delay is not None and delay > NOW for delay in delays)
    assert delays == sorted(delays)  # type: ignore[type-var]
    assert notification_retry_at(MAX_NOTIFICATION_ATTEMPTS, NOW) is None


def test_an_order_costs_its_read_and_its_shipment_s():
    assert (calls_of("messages"), calls_of("orders_v2")) == (1, 2)


@pytest.mark.parametrize(("per_minute", "per_second"), [(120, 2), (60, 1), (1, 1), (61, 2), (600, 10)])
def test_a_second_spends_at_most_its_share_of_the_minute(per_minute, per_second):
    assert calls_per_second(per_minute) == per_second


def test_only_what_passes_the_bound_is_dropped():
    assert [pending_over_bound(pending, 1000) for pending in (0, 1000, 1001, 1500)] == [0, 0, 1, 500]
    assert "1000" in dropped_reason(1000)


def test_processed_notifications_are_kept_for_the_retention():
    assert retention_cutoff(NOW, 7) == NOW - dt.timedelta(days=7)
