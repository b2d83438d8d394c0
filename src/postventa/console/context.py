"""What the console's pages share: settings, database, clock, the Mercado Libre client and the
action guide's caps (for the send, as the API has them), the hook that wakes the delivery worker,
the signer, the sign-in throttle and the templates of each language. Built once by the composition
root (wiring.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from postventa.config import Settings
from postventa.console import labels
from postventa.console.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGE_NAMES,
    LANGUAGES,
    local_time,
    request_language,
    translations,
)
from postventa.console.sessions import Signer
from postventa.console.throttle import SignInThrottle
from postventa.meli.client import MeliClient
from postventa.services.guide import GuideCapsCache
from postventa.store.engine import Database

PACKAGE_DIRECTORY = Path(__file__).parent
HTMX_FILE = "htmx-2.0.11.min.js"
SCRIPT_FILE = "console.js"


def _templates(language: str) -> Environment:
    """The templates in one language: gettext's `_` from its catalog, times formatted for it."""
    environment = Environment(
        loader=FileSystemLoader(PACKAGE_DIRECTORY / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    catalog = translations(language)
    environment.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    environment.filters["local_time"] = partial(_local_time, language=language)
    environment.globals.update(
        htmx_file=HTMX_FILE,
        script_file=SCRIPT_FILE,
        lang=language,
        language_names=LANGUAGE_NAMES,
        reason_labels=labels.REASON_LABELS,
        status_labels=labels.STATUS_LABELS,
        role_labels=labels.ROLE_LABELS,
    )
    return environment


def _local_time(moment: dt.datetime | None, site_id: str | None, *, language: str) -> str:
    return local_time(moment, site_id, language)


def _all_templates() -> dict[str, Environment]:
    return {language: _templates(language) for language in LANGUAGES}


@dataclass
class ConsoleContext:
    """The console's parts, shared by its requests."""

    settings: Settings
    database: Database
    clock: Callable[[], dt.datetime]
    meli: MeliClient
    # Mercado Libre's action-guide caps, the API's own cache (services/guide.py).
    guide: GuideCapsCache
    # Set when a delivery worker runs in this process: wake it at once (as the API does).
    on_message_queued: Callable[[], None] = field(default=lambda: None)
    signer: Signer = field(init=False)
    # Failed sign-ins, counted in memory or in the Redis every process shares (console/throttle.py).
    throttle: SignInThrottle = field(default_factory=SignInThrottle)
    templates: dict[str, Environment] = field(default_factory=_all_templates)

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

    @staticmethod
    def language(request: Request) -> str:
        """The language the request is answered in (its cookie, else Accept-Language, else Spanish)."""
        return request_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))

    def gettext(self, request: Request, message: str) -> str:
        """A text of the code in the request's language."""
        return translations(self.language(request)).gettext(message)
