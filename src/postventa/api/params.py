"""Read the parameters of a request from its query string, headers and body (contract §3.1).

Check 0, before the contract's checks: a request whose parameters cannot be read (a query string
or form that is not UTF-8, malformed JSON, a multipart body without boundary, a body type the
endpoint does not take, or one name given twice with different values) is refused first, since
no later check could trust what it reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from postventa.api.multipart import NotUtf8, StrictMultiPartParser
from postventa.domain.errors import PostventaError, RefusalKind, invalid
from postventa.domain.parameters import API_KEY, Parameters
from postventa.domain.send_request import UploadedFile

Pairs = list[tuple[str, object]]


async def read_parameters(request: Request, known: Iterable[str], *, max_part_bytes: int) -> Parameters:
    """Every known parameter from the query, the X-API-Key header and the body, merged."""
    sources: list[Pairs] = [parse_urlencoded(request.scope["query_string"], where="query string")]
    header_key = request.headers.get("x-api-key")
    if header_key is not None:
        sources.append([(API_KEY, header_key)])
    sources.append(await _body_pairs(request, max_part_bytes))
    return Parameters.collect(sources, known)


def read_query(request: Request, known: Iterable[str]) -> Parameters:
    """Parameters of a request without body (reads): the query string and the X-API-Key header."""
    sources: list[Pairs] = [parse_urlencoded(request.scope["query_string"], where="query string")]
    header_key = request.headers.get("x-api-key")
    if header_key is not None:
        sources.append([(API_KEY, header_key)])
    return Parameters.collect(sources, known)


def parse_urlencoded(raw: bytes, *, where: str) -> Pairs:
    """a=1&b=x+y → [("a", "1"), ("b", "x y")]; percent-escapes must decode to UTF-8."""
    pairs: Pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        try:
            pairs.append((_unquote(name), _unquote(value)))
        except UnicodeDecodeError as error:
            raise _unreadable("invalid_encoding", f"The {where} is not valid UTF-8.") from error
    return pairs


def _unquote(raw: bytes) -> str:
    if b"%" not in raw:  # most names and many values: nothing to unescape
        return raw.replace(b"+", b" ").decode("utf-8")
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")


async def _body_pairs(request: Request, max_part_bytes: int) -> Pairs:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _multipart_pairs(request, max_part_bytes)
    # Read, not `request.body()`: Starlette keeps that on the request until the response, and for a
    # base64 attachment the body is the largest thing in memory; parsed, it is no longer needed.
    body = b"".join([chunk async for chunk in request.stream()])
    if not body:
        return []
    if media_type == "application/json" or media_type.endswith("+json"):
        text = _json_text(body)
        del body  # json.loads(bytes) would decode a second copy of the whole body, and keep this one
        return _json_pairs(text)
    if media_type == "application/x-www-form-urlencoded":
        return parse_urlencoded(body, where="form body")
    raise PostventaError.of(
        RefusalKind.UNSUPPORTED_MEDIA,
        "unsupported_media_type",
        f"A body of type '{media_type or 'unknown'}' is not accepted; use application/json, "
        "multipart/form-data or application/x-www-form-urlencoded.",
    )


class _JsonObject(list[tuple[str, object]]):
    """A JSON object as its (name, value) pairs, keeping names given twice."""


def _json_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # a byte order mark is allowed, as json.loads(bytes) allowed it
    except UnicodeDecodeError as error:
        raise _unreadable("malformed_json", "The JSON body is malformed.") from error


def _json_pairs(body: str) -> Pairs:
    try:
        document = json.loads(body, object_pairs_hook=_JsonObject)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise _unreadable("malformed_json", "The JSON body is malformed.") from error
    if not isinstance(document, _JsonObject):
        raise _unreadable("malformed_json", "The JSON body must be an object.")
    return list(document)


async def _multipart_pairs(request: Request, max_part_bytes: int) -> Pairs:
    parser = StrictMultiPartParser(request.headers, request.stream(), max_part_size=max_part_bytes)
    try:
        form = await parser.parse()
    except NotUtf8 as error:
        raise _unreadable("invalid_encoding", error.message) from error
    except MultiPartException as error:
        raise _unreadable(
            "malformed_multipart", f"The multipart body is malformed: {error.message}"
        ) from error
    except (ValueError, KeyError, UnicodeDecodeError) as error:
        raise _unreadable("malformed_multipart", "The multipart body is malformed.") from error
    pairs: Pairs = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            content = await value.read()
            pairs.append((name, UploadedFile(filename=value.filename or "", content=content)))
        else:
            pairs.append((name, value))
    await form.close()
    return pairs


def _unreadable(code: str, message: str) -> PostventaError:
    return PostventaError.of(RefusalKind.UNREADABLE, code, message)


async def read_json_document(request: Request) -> object:
    """A JSON body as Python values (admin API)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise PostventaError.of(
            RefusalKind.UNSUPPORTED_MEDIA, "unsupported_media_type", "The body must be application/json."
        )
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError) as error:
        raise _unreadable("malformed_json", "The JSON body is malformed.") from error


# Alephee's pages: 100 rows unless `limit` says otherwise (its clients step their offset by 100).
DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000
MAX_OFFSET = 2**62


def page_window(parameters: Parameters) -> tuple[int, int]:
    """`limit` and `offset` of a paged read, defaulted and bounded (400 `limit_invalid`/`offset_invalid`)."""
    limit = _bounded_int(parameters, "limit", DEFAULT_PAGE_LIMIT, low=1, high=MAX_PAGE_LIMIT)
    return limit, _bounded_int(parameters, "offset", 0, low=0, high=MAX_OFFSET)


def _bounded_int(parameters: Parameters, name: str, default: int, *, low: int, high: int) -> int:
    text = parameters.text(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not low <= int(text) <= high:
        raise invalid(f"{name}_invalid", f"'{name}' must be an integer from {low} to {high}.")
    return int(text)
