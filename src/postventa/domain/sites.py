"""Mercado Libre sites in scope, their countries, template languages and time zones."""

from __future__ import annotations

import enum


class Language(enum.Enum):
    """Language of the fixed templates."""

    SPANISH = "es"
    PORTUGUESE = "pt"


class Site(enum.Enum):
    """A Mercado Libre site; the value is the site id."""

    MLA = "MLA"
    MLB = "MLB"
    MLM = "MLM"
    MCO = "MCO"
    MLC = "MLC"
    MLU = "MLU"
    MPE = "MPE"
    MEC = "MEC"

    @property
    def country(self) -> str:
        """ISO country code."""
        return _COUNTRIES[self]

    @property
    def country_name(self) -> str:
        """The country's name in English, for messages."""
        return _COUNTRY_NAMES[self]

    @property
    def language(self) -> Language:
        """Language of the templates sent on this site."""
        return Language.PORTUGUESE if self is Site.MLB else Language.SPANISH

    @property
    def time_zone(self) -> str:
        """IANA zone used to tell "today" for delivery promises."""
        return _TIME_ZONES[self]

    @classmethod
    def parse(cls, value: str) -> Site | None:
        """The site for an id such as "mla" or "MLA", or None."""
        try:
            return cls(value.strip().upper())
        except ValueError:
            return None


_COUNTRIES = {
    Site.MLA: "AR",
    Site.MLB: "BR",
    Site.MLM: "MX",
    Site.MCO: "CO",
    Site.MLC: "CL",
    Site.MLU: "UY",
    Site.MPE: "PE",
    Site.MEC: "EC",
}

_COUNTRY_NAMES = {
    Site.MLA: "Argentina",
    Site.MLB: "Brazil",
    Site.MLM: "Mexico",
    Site.MCO: "Colombia",
    Site.MLC: "Chile",
    Site.MLU: "Uruguay",
    Site.MPE: "Peru",
    Site.MEC: "Ecuador",
}

_TIME_ZONES = {
    Site.MLA: "America/Argentina/Buenos_Aires",
    Site.MLB: "America/Sao_Paulo",
    Site.MLM: "America/Mexico_City",
    Site.MCO: "America/Bogota",
    Site.MLC: "America/Santiago",
    Site.MLU: "America/Montevideo",
    Site.MPE: "America/Lima",
    Site.MEC: "America/Guayaquil",
}
