"""Attachment uploads (research §2.3): the documented limits and their 400 messages."""

from __future__ import annotations

from postventa.emulator import ids
from postventa.emulator.errors import MeliError, generic_error
from postventa.emulator.models import Attachment
from postventa.emulator.sites import KNOWN_SITES, utc_now

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_FILENAME_CHARACTERS = 200
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "pdf": "application/pdf",
    "txt": "text/plain",
}


def require_site(site_id: str | None) -> str:
    """The `site_id` query parameter, which uploads and downloads both require."""
    if not site_id:
        raise _bad_request("The queryparam 'site_id' is required")
    if site_id.upper() not in KNOWN_SITES:
        raise _bad_request(f"Invalid site_id: '{site_id}' is not a recognized site")
    return site_id.upper()


def new_attachment(seller_id: int, site_id: str, filename: str | None, data: bytes) -> Attachment:
    """A validated upload, named `<seller>_<uuid>.<ext>` as Mercado Libre names it."""
    if not filename or not data:
        raise _bad_request("File attached is empty")
    if "/" in filename or "\\" in filename:
        raise _bad_request("File name cannot include characters like /, \\")
    if len(filename) > MAX_FILENAME_CHARACTERS:
        raise _bad_request("The original_filename exceeded 200 character limit")
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in CONTENT_TYPES:
        raise _bad_request("The file type is not supported: accepted formats are JPG, PNG, PDF and TXT")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise _bad_request("File attachment is bigger than 25 Mb.")
    return Attachment(
        ids.attachment_id(seller_id, extension),
        seller_id,
        site_id,
        filename,
        CONTENT_TYPES[extension],
        data,
        utc_now(),
    )


def _bad_request(message: str) -> MeliError:
    return generic_error(400, "bad_request", message)
