"""Settings from the environment (POSTVENTA_*); the only module that reads it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from postventa.domain.attachments import DEFAULT_MAX_ATTACHMENT_BYTES

DEFAULT_DATABASE_PATH = Path("var") / "postventa.db"


class Settings(BaseSettings):
    """Everything an operator can set. See the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="POSTVENTA_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_DATABASE_PATH}",
        description="sqlite:///path/to/file.db or postgresql://user@host:port/database",
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
    max_query_bytes: int = Field(default=32 * 1024, gt=0)
    log_level: str = Field(default="info")

    @field_validator("admin_token")
    @classmethod
    def _blank_token_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: a base64 attachment at the limit plus room for the other fields."""
        base64_length = (self.max_attachment_bytes + 2) // 3 * 4
        # Line breaks every 76 characters (escaped in JSON as two) are allowed in base64.
        return base64_length * 78 // 76 + 64 * 1024
