"""What the console's pages share: settings, database, clock, the signer, the sign-in throttle and
the templates. Built once by the composition root (wiring.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from postventa.config import Settings
from postventa.console.sessions import Signer
from postventa.console.throttle import SignInThrottle
from postventa.domain.sites import Site
from postventa.store.engine import Database

PACKAGE_DIRECTORY = Path(__file__).parent
HTMX_FILE = "htmx-2.0.11.min.js"


def local_time(moment: dt.datetime | None, site_id: str | None) -> str:
    """A time as the account's site reads it (UTC when the site is unknown)."""
    if moment is None:
        return ""
    site = Site.parse(site_id or "")
    zone = ZoneInfo(site.time_zone) if site is not None else dt.UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _templates() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(PACKAGE_DIRECTORY / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["local_time"] = local_time
    environment.globals["htmx_file"] = HTMX_FILE
    return environment


@dataclass
class ConsoleContext:
    """The console's parts, shared by its requests."""

    settings: Settings
    database: Database
    clock: Callable[[], dt.datetime]
    signer: Signer = field(init=False)
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    templates: Environment = field(default_factory=_templates)

    def __post_init__(self) -> None:
        self.signer = Signer(self.settings.console_secret)

    @property
    def secure_cookies(self) -> bool:
        """Whether browsers reach the service over HTTPS (POSTVENTA_PUBLIC_URL): cookies then say Secure."""
        return (self.settings.public_url or "").strip().lower().startswith("https://")

    @property
    def session_seconds(self) -> int:
        """How long a session lasts (POSTVENTA_CONSOLE_SESSION_HOURS)."""
        return int(self.settings.console_session_hours * 3600)
