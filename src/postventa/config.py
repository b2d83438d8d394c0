"""Settings from the environment (POSTVENTA_*); the only module that reads it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from postventa.domain.attachments import DEFAULT_MAX_ATTACHMENT_BYTES
from postventa.domain.delivery import RetryPolicy
from postventa.domain.webhooks import (
    ATTEMPT_TIMEOUT_SECONDS,
    DEFAULT_RETRY_SCHEDULE_SECONDS,
    parse_retry_schedule,
)

DEFAULT_DATABASE_PATH = Path("var") / "postventa.db"


class Settings(BaseSettings):
    """Everything an operator can set. See the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="POSTVENTA_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATABASE_PATH}",
        description="sqlite:///path/to/file.db or postgresql://user@host:port/database",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        description="PostgreSQL connections a process keeps open, and as many more at peaks.",
    )
    admin_token: str | None = Field(
        default=None, description="Bearer token of the admin API; without it the admin API is off."
    )
    max_attachment_bytes: int = Field(default=DEFAULT_MAX_ATTACHMENT_BYTES, gt=0)
    api_key_pepper: str = Field(
        default="", description="Secret mixed into API key hashes; changing it invalidates every key."
    )
    rate_limits: str = Field(
        default="send=120/minute,read=1200/minute",
        description="Requests per API key and endpoint class, e.g. send=120/minute,read=1200/minute.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db: rate-limit counters shared by every API process; "
        "without it they are kept in memory (one process).",
    )
    idempotency_ttl_seconds: int = Field(
        default=24 * 3600, gt=0, description="How long an Idempotency-Key and its response are kept."
    )
    token_key: str | None = Field(
        default=None,
        description="Fernet key(s) encrypting Mercado Libre tokens at rest, comma-separated, newest "
        "first; without it a key file is created (POSTVENTA_TOKEN_KEY_FILE).",
    )
    token_key_file: Path = Field(
        default=Path("var") / "token.key",
        description="Where the generated token key is kept when POSTVENTA_TOKEN_KEY is not set.",
    )
    meli_requests_per_minute: int = Field(
        default=500,
        gt=0,
        description="Mercado Libre calls per minute per application (client id) and endpoint, shared "
        "by every process: through Redis (POSTVENTA_REDIS_URL) or else the database.",
    )
    meli_cool_down_seconds: float = Field(
        default=10.0,
        gt=0,
        description="After a 429 without Retry-After, how long no process calls that endpoint for "
        "that application.",
    )
    meli_max_wait_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a call may wait for its turn in the call budget or a cool-down; a turn "
        "further away fails the call at once (transient, marketplace_budget_wait, nothing sent).",
    )
    heartbeat_max_age_seconds: float = Field(
        default=60.0, gt=0, description="/readyz fails when no delivery worker was seen for this long."
    )
    meli_api_url: str = Field(
        default="https://api.mercadolibre.com",
        description="Mercado Libre's API (the emulator's in tests and demo).",
    )
    public_url: str | None = Field(
        default=None,
        description="Where Mercado Libre reaches this service (webhook: PUBLIC_URL/webhooks/mercadolibre).",
    )
    embedded_worker: bool | None = Field(
        default=None,
        description="Run the delivery worker inside `serve`; default: yes on SQLite, no on PostgreSQL.",
    )
    worker_concurrency: int = Field(default=8, gt=0, le=256)
    meli_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Read timeout of one Mercado Libre call."
    )
    worker_lease_seconds: float = Field(
        default=90.0,
        gt=0,
        description="How long a worker holds a message; must outlast one attempt (4 calls).",
    )
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    retry_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; it doubles each time."
    )
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest delay between two attempts.")
    retry_max_attempts: int = Field(default=10, gt=0, le=100, description="Attempts before a message fails.")
    retry_wait_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How often a message waiting on a temporary block (payment pending, Full not delivered) "
        "is tried again; waits never use up the attempts.",
    )
    max_query_bytes: int = Field(
        default=32 * 1024, gt=0, description="Longest query string; a longer one is refused (414)."
    )
    max_header_count: int = Field(
        default=100, ge=10, le=10_000, description="Header fields a request may carry (431 beyond)."
    )
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=4096,
        description="Total bytes of a request's header fields (431 beyond; the request line is bounded "
        "by POSTVENTA_MAX_QUERY_BYTES).",
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time to receive a complete request head (408 and closed after)."
    )
    body_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Longest pause between two parts of a request body while the server waits for it "
        "(408 and closed after).",
    )
    keep_alive_seconds: float = Field(
        default=5.0, gt=0, description="How long an idle connection is kept open between requests."
    )
    max_large_bodies: int = Field(
        default=4,
        ge=1,
        description="Request bodies over 64 KiB read at once by one process; others wait their turn.",
    )
    large_body_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a large body waits for its turn before a 503 with Retry-After.",
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="After SIGTERM, how long `serve` and `worker` finish what is in flight before they exit.",
    )
    notification_retention_days: float = Field(
        default=7.0, gt=0, description="How long processed Mercado Libre notifications are kept."
    )
    max_pending_notifications_per_seller: int = Field(
        default=1000,
        ge=10,
        description="Unprocessed notifications kept per seller; beyond, the oldest are dropped (polling "
        "and the missed feeds still find what they named).",
    )
    notification_calls_per_minute: int = Field(
        default=120,
        gt=0,
        description="Mercado Libre calls the notifications of one seller may cause per minute.",
    )
    log_level: str = Field(default="info")
    console_secret: str | None = Field(
        default=None,
        description="Key that signs the console's session cookies and CSRF tokens; without it, a random "
        "key per process (sessions end on restart; several API processes need one set).",
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a console session lasts after sign-in."
    )
    console_refresh_seconds: int = Field(
        default=3,
        ge=1,
        le=60,
        description="How often an open console page asks for new messages and status changes.",
    )
    webhook_retry_schedule: str = Field(
        default=",".join(f"{seconds:g}" for seconds in DEFAULT_RETRY_SCHEDULE_SECONDS),
        description="Waits in seconds, comma-separated, between a webhook's attempts after the first; once "
        "spent the delivery fails for good.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs with http:// and private, loopback or link-local addresses (tests, "
        "the demo, internal receivers).",
    )
    webhook_concurrency: int = Field(
        default=32, gt=0, le=1024, description="Webhook deliveries a worker process makes at once."
    )
    webhook_endpoint_concurrency: int = Field(
        default=4, gt=0, le=256, description="Webhook deliveries in flight to one endpoint at once."
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=ATTEMPT_TIMEOUT_SECONDS,
        description="How long a worker holds a webhook delivery; a worker that dies leaves it this long "
        "before another attempts it. Must exceed an attempt's 10 s.",
    )

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _retry_schedule_parses(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @field_validator("admin_token", "redis_url", "token_key", "console_secret")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Settings:
        # An attempt makes at most four calls (token, reconcile, upload, send); a lease that ran out
        # during one would let a second worker send the same message.
        if self.worker_lease_seconds <= 4 * self.meli_timeout_seconds:
            raise ValueError("POSTVENTA_WORKER_LEASE_SECONDS must exceed 4 x POSTVENTA_MELI_TIMEOUT_SECONDS")
        return self

    @property
    def retry_policy(self) -> RetryPolicy:
        """The delivery retry policy these settings describe."""
        return RetryPolicy(
            self.retry_base_seconds, self.retry_max_seconds, self.retry_max_attempts, self.retry_wait_seconds
        )

    @property
    def webhook_retry_waits(self) -> tuple[float, ...]:
        """POSTVENTA_WEBHOOK_RETRY_SCHEDULE as seconds."""
        return parse_retry_schedule(self.webhook_retry_schedule)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: a base64 attachment at the limit plus room for the other fields."""
        base64_length = (self.max_attachment_bytes + 2) // 3 * 4
        # Line breaks every 76 characters (escaped in JSON as two) are allowed in base64.
        return base64_length * 78 // 76 + 64 * 1024
