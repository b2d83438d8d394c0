"""Mercado Libre site ids, their time zones and languages, and the date formats the API uses."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The eight sites postventa serves (research §4), with the zone that tells "today" there.
SITE_TIME_ZONES = {
    "MLA": "America/Argentina/Buenos_Aires",
    "MLB": "America/Sao_Paulo",
    "MLM": "America/Mexico_City",
    "MCO": "America/Bogota",
    "MLC": "America/Santiago",
    "MLU": "America/Montevideo",
    "MPE": "America/Lima",
    "MEC": "America/Guayaquil",
}
SITES_IN_SCOPE = frozenset(SITE_TIME_ZONES)
# Every site `GET /sites` lists: attachments accept any of them as `site_id`.
KNOWN_SITES = SITES_IN_SCOPE | frozenset(
    {"MLV", "MBO", "MPY", "MCR", "MGT", "MHN", "MNI", "MPA", "MSV", "MRD", "MCU", "MPT"}
)


def site_zone(site_id: str) -> dt.tzinfo:
    """The site's time zone (UTC when the zone database lacks it)."""
    try:
        return ZoneInfo(SITE_TIME_ZONES.get(site_id, "UTC"))
    except ZoneInfoNotFoundError:
        return dt.UTC


def is_portuguese(site_id: str) -> bool:
    """Whether Mercado Libre writes its templates in Portuguese on this site."""
    return site_id == "MLB"


def utc_now() -> dt.datetime:
    """The current instant, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def site_today(site_id: str, now: dt.datetime | None = None) -> dt.date:
    """The date on the buyer's calendar, which delivery promises are compared with."""
    return (now or utc_now()).astimezone(site_zone(site_id)).date()


def iso(moment: dt.datetime) -> str:
    """An instant as Mercado Libre writes message dates: UTC, milliseconds, `Z`."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(moment: dt.datetime, site_id: str) -> str:
    """An instant in the site's local offset, as orders and shipments carry dates."""
    return moment.astimezone(site_zone(site_id)).isoformat(timespec="milliseconds")
