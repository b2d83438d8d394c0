"""The journal: every call the emulator received (and every notification it sent), in order, with
what happened to it, so a test can tell an applied request from one a fault refused."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from postventa.emulator.sites import iso, utc_now

MAX_ENTRIES = 10_000
_REDACTED_FORM_FIELDS = frozenset({"client_secret", "refresh_token", "code"})
_DISPOSITION_NAME = re.compile(rb'\bname="([^"]*)"')
_DISPOSITION_FILENAME = re.compile(rb'\bfilename="([^"]*)"')


@dataclass
class JournalEntry:
    """One call: what came in, whose access token it carried (`SellerId`, None without a known one),
    and how it ended (`Status` None when the connection was dropped or the call is still running)."""

    seq: int
    at: str
    method: str
    path: str
    query: dict[str, Any]
    body: Any
    seller_id: int | None = None
    status: int | None = None
    fault: str | None = None
    applied: bool = False

    def finish(self, status: int | None, *, applied: bool, fault: str | None = None) -> None:
        """Record the outcome."""
        self.status = status
        self.applied = applied
        if fault is not None:
            self.fault = fault

    def to_json(self) -> dict[str, Any]:
        """The entry as `GET /_emulator/journal` shows it."""
        return {
            "Seq": self.seq,
            "At": self.at,
            "Method": self.method,
            "Path": self.path,
            "Query": self.query,
            "Body": self.body,
            "SellerId": self.seller_id,
            "Status": self.status,
            "Fault": self.fault,
            "Applied": self.applied,
        }


class Journal:
    """Entries in arrival order; sequence numbers keep increasing across `clear()`."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: list[JournalEntry] = []
        self._last_seq = 0
        self._max_entries = max_entries

    def open(
        self, method: str, path: str, query: dict[str, Any], body: Any, seller_id: int | None = None
    ) -> JournalEntry:
        """A new entry for a call just received (`seller_id`: whose token it carries); the caller
        finishes it."""
        self._last_seq += 1
        entry = JournalEntry(self._last_seq, iso(utc_now()), method, path, query, body, seller_id)
        self._entries.append(entry)
        if len(self._entries) > self._max_entries:
            del self._entries[: len(self._entries) - self._max_entries]
        return entry

    def since(self, seq: int) -> tuple[list[JournalEntry], int]:
        """Entries after `seq`, and the `Next` value to ask from next time."""
        entries = [entry for entry in self._entries if entry.seq > seq]
        return entries, entries[-1].seq if entries else seq

    def clear(self) -> None:
        """Forget every entry (sequence numbers continue)."""
        self._entries.clear()

    @property
    def entries(self) -> list[JournalEntry]:
        """All entries kept, oldest first."""
        return list(self._entries)


def query_json(query_string: bytes) -> dict[str, Any]:
    """The query string as a dict; a repeated parameter becomes a list."""
    parsed = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else values for name, values in parsed.items()}


def describe_body(content_type: str, body: bytes) -> Any:
    """The body for the journal: parsed JSON, the multipart parts, form fields (secrets hidden), or None."""
    if not body:
        return None
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return {"multipart": _multipart_parts(content_type, body)}
    if kind == "application/x-www-form-urlencoded":
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {"form": {k: "***" if k in _REDACTED_FORM_FIELDS else v[-1] for k, v in fields.items()}}
    try:
        return json.loads(body)
    except ValueError:
        return body[:2000].decode("utf-8", "replace")


def _multipart_parts(content_type: str, body: bytes) -> list[dict[str, Any]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return []
    parts: list[dict[str, Any]] = []
    for chunk in body.split(b"--" + match.group(1).encode("latin-1"))[1:]:
        head, separator, content = chunk.partition(b"\r\n\r\n")
        name = _DISPOSITION_NAME.search(head)
        if not separator or name is None:
            continue
        part: dict[str, Any] = {"name": name.group(1).decode("utf-8", "replace")}
        filename = _DISPOSITION_FILENAME.search(head)
        if filename is not None:
            part["filename"] = filename.group(1).decode("utf-8", "replace")
            part["size"] = len(content.removesuffix(b"\r\n"))
        parts.append(part)
    return parts
