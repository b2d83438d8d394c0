"""Attachment rules (contract §3.4): allowed types, size, name, and content matching the extension."""

from __future__ import annotations

import binascii
import re
import unicodedata
from dataclasses import dataclass

from postventa.domain.errors import invalid
from postventa.domain.text import is_invisible, refuse_invisible, refuse_unprintable

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_NAME_CHARACTERS = 200

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "txt": "text/plain; charset=utf-8",
}
_MAGIC = {
    "pdf": (b"%PDF-",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
}
# Control characters a text file may not hold (tab, newline, form feed and carriage return may).
_TEXT_FORBIDDEN_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_WHITESPACE_CHARACTERS = " \t\r\n"
_BASE64_WHITESPACE = re.compile(f"[{_WHITESPACE_CHARACTERS}]+")
_BASE64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True)
class Attachment:
    """A validated file: its base name, lower-case extension and bytes."""

    name: str
    extension: str
    content: bytes

    @property
    def file_name(self) -> str:
        """The name with its extension, as the buyer will see it."""
        return f"{self.name}.{self.extension}"

    @property
    def content_type(self) -> str:
        """MIME type served on download."""
        return CONTENT_TYPES[self.extension]


def normalize_extension(raw: str) -> str:
    """ "PDF", ".pdf" and "pdf" all mean pdf; anything outside the allowed list is refused."""
    extension = raw.strip().lstrip(".").lower()
    if not extension:
        raise invalid("attachment_extension_missing", "'documentExtension' is required with 'fileBase64'.")
    if extension not in CONTENT_TYPES:
        raise invalid(
            "attachment_extension_not_allowed",
            f"Attachments of type '{extension}' are not allowed; use pdf, jpg, jpeg, png or txt.",
        )
    return extension


def split_file_name(file_name: str) -> tuple[str, str]:
    """A multipart filename "factura.PDF" → ("factura", "PDF"); no extension → refused."""
    stem, dot, extension = file_name.strip().rpartition(".")
    if not dot or not stem or not extension.strip():
        raise invalid(
            "attachment_extension_missing",
            f"The uploaded file '{file_name}' has no extension; use pdf, jpg, jpeg, png or txt.",
        )
    return stem, extension


def check_name(name: str, *, parameter: str) -> str:
    """A file name without path separators, control or format characters, at most 200 characters."""
    name = name.strip()
    if not name:
        raise invalid("attachment_name_missing", f"'{parameter}' is required for an attachment.")
    if "/" in name or "\\" in name:
        raise invalid("attachment_name_invalid", f"'{parameter}' must not contain '/' or '\\'.")
    refuse_unprintable(name, parameter=parameter)
    refuse_invisible(name, parameter=parameter)
    if len(name) > MAX_NAME_CHARACTERS:
        raise invalid(
            "attachment_name_too_long",
            f"'{parameter}' has {len(name)} characters; at most {MAX_NAME_CHARACTERS} are allowed.",
        )
    return name


def download_file_name(name: str, extension: str) -> str:
    """The name a download is offered under: control and format characters (which a name stored
    before they were refused may hold) shown as "_", so the name reads as it is."""
    shown = "".join("_" if _hidden(character) else character for character in name)
    return f"{shown}.{extension}"


def _hidden(character: str) -> bool:
    return is_invisible(character) or unicodedata.category(character) in {"Cc", "Cs"}


def decode_base64(encoded: str) -> bytes:
    """Standard base64, whitespace allowed anywhere, any other character refused.

    Checked and decoded in the text itself: an attachment of 25 MiB is 33 MiB of base64, and a
    bytes copy of it would be the largest object of the request.
    """
    if not encoded.isascii():
        raise invalid("attachment_base64_invalid", "'fileBase64' is not valid base64.")
    # `in` searches for one character in C, where the regular expression would try every position
    # of the text; most clients send no whitespace at all, and then nothing is substituted.
    has_whitespace = any(character in encoded for character in _WHITESPACE_CHARACTERS)
    compact = _BASE64_WHITESPACE.sub("", encoded) if has_whitespace else encoded
    if not _BASE64_ALPHABET.fullmatch(compact) or len(compact) % 4:
        raise invalid("attachment_base64_invalid", "'fileBase64' is not valid base64.")
    try:
        return binascii.a2b_base64(compact, strict_mode=True)  # reads an ASCII str in place
    except binascii.Error as error:
        raise invalid("attachment_base64_invalid", "'fileBase64' is not valid base64.") from error


def decoded_size_upper_bound(encoded_length: int) -> int:
    """The most bytes a base64 text of this length can decode to (to refuse before decoding)."""
    return encoded_length * 3 // 4


def build_attachment(name: str, extension: str, content: bytes, *, max_bytes: int) -> Attachment:
    """Check everything about a file and return it; the first broken rule is refused."""
    extension = normalize_extension(extension)
    name = check_name(name, parameter="documentName")
    check_content(extension, content, max_bytes=max_bytes)
    return Attachment(name=name, extension=extension, content=content)


def check_content(extension: str, content: bytes, *, max_bytes: int) -> None:
    """Not empty, not over the limit, and really of the type its extension says."""
    if not content:
        raise invalid("attachment_empty", "The attached file is empty.")
    if len(content) > max_bytes:
        raise invalid(
            "attachment_too_large",
            f"The attached file has {len(content)} bytes; at most {max_bytes} are allowed.",
        )
    if extension == "txt":
        if not _is_text(content):
            raise invalid("attachment_content_mismatch", "The .txt attachment is not UTF-8 text.")
        return
    if not content.startswith(_MAGIC[extension]):
        raise invalid(
            "attachment_content_mismatch",
            f"The attached file's content is not a {extension} file.",
        )


def _is_text(content: bytes) -> bool:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return _TEXT_FORBIDDEN_CONTROLS.search(text) is None
