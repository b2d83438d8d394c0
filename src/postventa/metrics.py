"""The service's Prometheus metrics, shared by the API, the delivery worker and the Mercado Libre client.

The names are fixed: dashboards, alerts and the scale test read them (docs/operations.md lists
them). Every label is bounded: HTTP routes and Mercado Libre endpoints are templates, never raw
paths, and free-form values (methods, topics) fall into "other".

Counters and histograms live in prometheus_client's default registry. When several API processes
run (`PROMETHEUS_MULTIPROC_DIR` set before start, read by prometheus_client itself), each process
writes its values to that directory and a scrape aggregates all of them. The queue gauges are not
process state: they are read from the database at each scrape and added to the scrape's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Mercado Libre calls time out after 15 s (meli.client.READ_TIMEOUT_SECONDS): the buckets reach past it.
MELI_DURATION_BUCKETS_SECONDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# The statuses of an outbound message (docs/delivery.md), always exposed, at 0 when none.
MESSAGE_STATUSES = ("queued", "sending", "pending_moderation", "sent", "moderated", "failed")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"

HTTP_REQUESTS = Counter(
    "postventa_http_requests_total",
    "HTTP requests answered by the API, by route template ('unmatched': no route) and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "postventa_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template.",
    ["method", "route"],
)
DELIVERY_ATTEMPTS = Counter(
    "postventa_delivery_attempts_total",
    "Delivery attempts recorded by the worker, by outcome (sent, moderated, found, retry, failed, "
    "lease_lost).",
    ["outcome"],
)
MELI_REQUESTS = Counter(
    "postventa_meli_requests_total",
    "Calls to Mercado Libre, by endpoint template and HTTP status (or timeout, connection, error).",
    ["method", "endpoint", "status"],
)
MELI_REQUEST_DURATION = Histogram(
    "postventa_meli_request_duration_seconds",
    "Duration of calls to Mercado Libre (without the wait for the per-minute budget).",
    ["method", "endpoint"],
    buckets=MELI_DURATION_BUCKETS_SECONDS,
)
RATE_LIMIT_REFUSALS = Counter(
    "postventa_rate_limit_refusals_total",
    "Requests refused with 429 by the per-key rate limit, by endpoint class (send, read).",
    ["endpoint_class"],
)
INBOUND_NOTIFICATIONS = Counter(
    "postventa_inbound_notifications_total",
    "Well-formed Mercado Libre notifications received, by topic and whether they were kept.",
    ["topic", "accepted"],
)
# Outbound webhooks to integrators (issue 20): every attempt's outcome, in the dispatcher's process.
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed")
WEBHOOK_DELIVERIES = Counter(
    "postventa_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome: delivered (a 2xx), retry (failed, tried again later), "
    "failed (the retry schedule spent: given up).",
    ["outcome"],
)
for _outcome in WEBHOOK_OUTCOMES:  # exposed at 0 before the first attempt
    WEBHOOK_DELIVERIES.labels(_outcome)


def http_method_label(method: str) -> str:
    """The method as a label: the standard ones as they are, anything a client invents as "other"."""
    return method if method in HTTP_METHODS else OTHER


@dataclass(frozen=True)
class QueueSnapshot:
    """The outbox as the database holds it at scrape time, for every process alike."""

    by_status: dict[str, int] = field(default_factory=dict)
    due: int = 0
    # Each linked account: whether its link needs relinking (Mercado Libre refused its refresh token).
    needs_relink: dict[int, bool] = field(default_factory=dict)
    # Webhook deliveries not yet delivered nor given up (pending or in flight).
    webhooks_pending: int = 0


class _QueueCollector(Collector):
    """Exposes one snapshot as the `postventa_messages`, `postventa_messages_due`,
    `postventa_marketplace_link_needs_relink` and `postventa_webhook_deliveries_pending` gauges."""

    def __init__(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "postventa_messages", "Outbound messages by status, read from the database.", labels=["status"]
        )
        counts = {status: 0 for status in MESSAGE_STATUSES} | self.snapshot.by_status
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status
        yield GaugeMetricFamily(
            "postventa_messages_due",
            "Outbound messages a worker could claim now (queued and due, or with an expired lease).",
            value=self.snapshot.due,
        )
        # Read from the database like the queue: the process that marks a link (a worker) is seldom
        # the one that links it again (the API), and a gauge kept in either would disagree.
        relink = GaugeMetricFamily(
            "postventa_marketplace_link_needs_relink",
            "1 while the account's Mercado Libre link needs relinking (its messages wait), else 0.",
            labels=["account_id"],
        )
        for account_id, needs_relink in sorted(self.snapshot.needs_relink.items()):
            relink.add_metric([str(account_id)], 1 if needs_relink else 0)
        yield relink
        yield GaugeMetricFamily(
            "postventa_webhook_deliveries_pending",
            "Webhook deliveries waiting for an attempt or in flight, read from the database.",
            value=self.snapshot.webhooks_pending,
        )


class _Forward(Collector):
    """Everything a registry holds, as part of another registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


def is_multiprocess() -> bool:
    """Whether prometheus_client writes values to PROMETHEUS_MULTIPROC_DIR (decided when it was imported)."""
    return values.ValueClass is not values.MutexValue


def scrape_registry(snapshot: QueueSnapshot | None) -> CollectorRegistry:
    """A registry for one scrape: every process's metrics (or this process's), plus the queue gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if is_multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # registers itself
    else:
        registry.register(_Forward(REGISTRY))
    if snapshot is not None:
        registry.register(_QueueCollector(snapshot))
    return registry


def exposition(snapshot: QueueSnapshot | None, accept: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type, in the format the scraper asked for (Accept header)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(scrape_registry(snapshot)), content_type
