"""A strict multipart/form-data parser: Starlette's, refusing what it would quietly let through.

Starlette accepts a body cut off before its closing boundary (keeping the parts it saw) and decodes
text that is not UTF-8 as Latin-1. Either would store something the client never sent whole, so
both are refused here. Built on Starlette's parser (pinned version): it overrides its callbacks.
"""

from __future__ import annotations

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser


class NotUtf8(MultiPartException):
    """A text field or a name in the body is not UTF-8."""


class StrictMultiPartParser(MultiPartParser):
    """Complete bodies only, and UTF-8 text fields and file names only."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reached_end = False

    def on_end(self) -> None:
        self.reached_end = True

    def on_headers_finished(self) -> None:
        _disposition, options = parse_options_header(self._current_part.content_disposition)
        for key in (b"name", b"filename"):
            if key in options:
                _utf8(options[key], f"A part's {key.decode()}")
        super().on_headers_finished()

    def on_part_end(self) -> None:
        if self._current_part.file is None:
            _utf8(self._current_part.data, f"The field '{self._current_part.field_name}'")
        super().on_part_end()

    async def parse(self) -> FormData:
        form = await super().parse()
        if not self.reached_end:
            await form.close()
            raise MultiPartException("The body ends before its closing boundary.")
        return form


def _utf8(raw: bytes | bytearray, what: str) -> None:
    try:
        bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotUtf8(f"{what} is not valid UTF-8.") from error
