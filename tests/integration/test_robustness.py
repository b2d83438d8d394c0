"""Hostile and broken requests against the real server (real TCP, uvicorn + our HTTP protocol).

Every refusal must be a 4xx in the documented JSON body {"Status", "Message", "Code"} (never a 500,
never plain text) and must leave the order's conversation untouched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx2
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import LiveServer, make_settings
from tests.factories import Tenant, make_order, make_tenant

ERROR_KEYS = {"Status", "Message", "Code"}
JSON = "application/json"
MULTIPART = "multipart/form-data; boundary=x"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Target:
    """A tenant's fresh order: its conversation is empty until something is stored."""

    tenant: Tenant
    order_id: int

    @property
    def path(self) -> str:
        return f"/v2/orders/{self.order_id}/messages"

    def query(self, **extra: object) -> str:
        """Credentials (and extras) as a query string, for URLs written by hand."""
        return urlencode(self.tenant.credentials(**extra))


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes


@pytest.fixture
async def target(database) -> Target:
    tenant = await make_tenant(database, name="Robust")
    return Target(tenant, await make_order(database, tenant))


@pytest.fixture
async def http(live_server) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=live_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def small_server(database_url: str, database) -> Iterator[LiveServer]:
    """A server whose attachments may not pass 1 KiB: the body limit is about 66 KiB."""
    with LiveServer(make_settings(database_url, max_attachment_bytes=1024)) as server:
        yield server


def assert_refused(
    response: httpx2.Response | RawResponse, expected: int | None = None, code: str | None = None
) -> None:
    """A 4xx in the documented JSON body, optionally with the given status and code."""
    status, content_type, body = response.status_code, response.headers.get("content-type"), response.content
    assert 400 <= status < 500, (status, body[:300])
    assert (content_type or "").split(";")[0].strip() == JSON, (content_type, body[:300])
    document = json.loads(body)
    assert set(document) == ERROR_KEYS, document
    assert document["Status"] == status
    assert all(isinstance(document[key], str) and document[key] for key in ("Message", "Code")), document
    assert expected is None or status == expected, document
    assert code is None or document["Code"] == code, document


async def assert_nothing_stored(http: httpx2.AsyncClient, target: Target) -> None:
    response = await http.get(target.path, params=target.tenant.credentials())
    assert response.status_code == 200, response.text
    assert response.json()["Results"] == [], response.text
    assert response.json()["Total"] == 0


async def raw_exchange(port: int, request: bytes) -> RawResponse:
    """Send bytes httpx2 would refuse to send, and read one HTTP/1.1 response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the server may answer and close before reading everything
        return await asyncio.wait_for(_read_response(reader), timeout=15)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        content = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        content = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            content += await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        content = await reader.read()
    return RawResponse(int(status_line.split(" ")[1]), headers, content)


def multipart(*parts: tuple[str, str]) -> bytes:
    return b"".join(
        f'--x\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in parts
    )


HOLA = multipart(("message", "Hola"))
SECOND = b'--x\r\nContent-Disposition: form-data; name="documentName"\r\n\r\n'
NESTED = b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
BASE64_GARBAGE = (
    b'{"message": "Hola", "fileBase64": "aG9sYQ==!!$$", "documentName": "n", "documentExtension": "txt"}'
)

# (content type or None, body, status, code); credentials and messageOptions=4 go in the query.
BAD_BODIES = {
    "json_truncated": (JSON, b'{"message": "Hola', 400, "malformed_json"),
    "json_top_level_array": (JSON, b"[]", 400, "malformed_json"),
    "json_top_level_number": (JSON, b"42", 400, "malformed_json"),
    "json_top_level_string": (JSON, b'"Hola"', 400, "malformed_json"),
    "json_100000_open_brackets": (JSON, b"[" * 100_000, 400, "malformed_json"),
    "json_100000_nested_arrays": (JSON, NESTED, 400, None),
    "json_100000_nested_objects": (JSON, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "malformed_json"),
    "json_raw_non_utf8": (JSON, b'{"message": "Hola \xff\xfe"}', 400, "malformed_json"),
    "json_latin1": ("application/json; charset=latin-1", b'{"message": "\xf1"}', 400, None),
    "text_plain": ("text/plain", b"message=Hola", 415, "unsupported_media_type"),
    "xml": ("application/xml", b"<message>Hola</message>", 415, "unsupported_media_type"),
    "no_content_type": (None, b"message=Hola", 415, "unsupported_media_type"),
    "form_percent_ff": (FORM, b"message=Hola%FF", 400, "invalid_encoding"),
    "form_raw_non_utf8": (FORM, b"message=Hola\xff", 400, "invalid_encoding"),
    "form_non_utf8_name": (FORM, b"mess%FFage=Hola", 400, "invalid_encoding"),
    "multipart_without_boundary": ("multipart/form-data", HOLA + b"--x--\r\n", 400, "malformed_multipart"),
    "multipart_other_boundary": ("multipart/form-data; boundary=y", HOLA + b"--x--\r\n", 400, None),
    "multipart_garbage": (MULTIPART, b"garbage", 400, "malformed_multipart"),
    "multipart_part_without_name": (MULTIPART, HOLA.replace(b'; name="message"', b""), 400, None),
    # A truncated multipart body cannot be read: check 0 must refuse it whatever it held so far.
    "multipart_cut_in_second_part": (MULTIPART, HOLA + SECOND + b"fac", 400, "malformed_multipart"),
    "multipart_cut_in_second_header": (MULTIPART, HOLA + SECOND[:25], 400, "malformed_multipart"),
    "multipart_cut_after_boundary": (MULTIPART, HOLA + b"--x", 400, "malformed_multipart"),
    "multipart_cut_before_closing": (MULTIPART, HOLA, 400, "malformed_multipart"),
    "multipart_cut_in_only_part": (MULTIPART, HOLA[:-5], 400, "malformed_multipart"),
    # A form field that is not UTF-8 is refused in a urlencoded form; a multipart form is a form too.
    "multipart_field_not_utf8": (
        MULTIPART,
        HOLA.replace(b"Hola", b"\xff\xfe") + b"--x--\r\n",
        400,
        "invalid_encoding",
    ),
    "base64_garbage": (JSON, BASE64_GARBAGE, 400, "attachment_base64_invalid"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_unreadable_or_invalid_body_is_refused_in_json(http, target, case):
    content_type, body, status, code = BAD_BODIES[case]
    headers = {"content-type": content_type} if content_type else {}

    response = await http.post(
        f"{target.path}?{target.query(messageOptions=4)}", content=body, headers=headers
    )

    assert_refused(response, status, code)
    await assert_nothing_stored(http, target)


def _json_send(target: Target, **fields: object) -> bytes:
    document = {**target.tenant.credentials(), "messageOptions": 4, "message": "Hola", **fields}
    return json.dumps(document).encode()  # ensure_ascii: lone surrogates travel as \\ud800 escapes


ATTACHMENT = {"fileBase64": "aG9sYQ==", "documentName": "f", "documentExtension": "txt"}
SURROGATES = {
    "message": ({"message": "Hola \ud800"}, 400, "invalid_characters"),
    "message_reversed_pair": ({"message": "\udc00\ud800"}, 400, "invalid_characters"),
    "documentName": ({**ATTACHMENT, "documentName": "fac\ud800"}, 400, None),
    "documentExtension": ({**ATTACHMENT, "documentExtension": "t\ud800"}, 400, None),
    "API_KEY": ({"API_KEY": "\ud800"}, 401, "api_key_invalid"),
    "accountId": ({"accountId": "\ud800"}, 400, "account_id_invalid"),
    "messageOptions": ({"messageOptions": "\ud800"}, 400, "reason_invalid"),
    "orderId": ({"orderId": "\ud800"}, 400, "order_id_mismatch"),
}


@pytest.mark.parametrize("case", list(SURROGATES))
async def test_lone_surrogate_in_json_is_refused(http, target, case):
    fields, status, code = SURROGATES[case]

    response = await http.post(
        target.path, content=_json_send(target, **fields), headers={"content-type": JSON}
    )

    assert_refused(response, status, code)
    await assert_nothing_stored(http, target)


# Query strings; {creds} is API_KEY, accountId and messageOptions=4.
NUL_QUERIES = {
    "message": ("{creds}&message=Hola%00mundo", 400, "invalid_characters"),
    "message_only_nul": ("{creds}&message=%00", 400, "invalid_characters"),
    "api_key_suffix": ("API_KEY={key}%00&accountId={account}&messageOptions=4&message=Hola", 401, None),
    "api_key_only_nul": ("API_KEY=%00&accountId={account}&messageOptions=4&message=Hola", 401, None),
    "account_id": ("API_KEY={key}&accountId={account}%00&messageOptions=4&message=Hola", 400, None),
    "document_name": (
        "{creds}&message=Hola&documentExtension=txt&fileBase64=aG9sYQ%3D%3D&documentName=a%00b",
        400,
        None,
    ),
    "query_not_utf8": ("{creds}&message=Hola%FF", 400, "invalid_encoding"),
    "query_name_not_utf8": ("{creds}&mess%FFage=Hola", 400, "invalid_encoding"),
    "query_overlong_utf8": ("{creds}&message=%C0%AF", 400, "invalid_encoding"),
}


@pytest.mark.parametrize("case", list(NUL_QUERIES))
async def test_nul_and_non_utf8_in_the_query_are_refused(http, target, case):
    template, status, code = NUL_QUERIES[case]
    tenant = target.tenant
    query = template.format(
        creds=target.query(messageOptions=4), key=tenant.api_key, account=tenant.account_id
    )

    response = await http.post(f"{target.path}?{query}")

    assert_refused(response, status, code)
    await assert_nothing_stored(http, target)


async def test_query_string_over_32_kib_is_414(http, target):
    response = await http.post(
        f"{target.path}?{target.query(messageOptions=4, message='Hola')}&pad={'a' * 40_000}"
    )

    assert_refused(response, 414, "uri_too_long")
    await assert_nothing_stored(http, target)


async def test_a_200_kb_query_is_414_as_documented(live_server, http, target):
    """Refused by the server while the request line arrives, in the documented body."""
    padding = "a" * 200_000
    request = (
        f"POST {target.path}?{target.query(messageOptions=4, message='Hola')}&pad={padding} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    ).encode()

    response = await raw_exchange(live_server.port, request)

    assert_refused(response, 414, "uri_too_long")
    assert response.headers["connection"] == "close"
    await assert_nothing_stored(http, target)


async def test_content_length_over_the_limit_is_refused_before_the_body_is_read(small_server, http, target):
    request = (
        f"POST {target.path}?{target.query(messageOptions=4, message='Hola')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {small_server.settings.max_body_bytes + 1}\r\n\r\n"
    ).encode()

    response = await raw_exchange(small_server.port, request)  # the body is never sent

    assert_refused(response, 413, "request_too_large")
    await assert_nothing_stored(http, target)


async def test_chunked_body_growing_past_the_limit_is_413(small_server, http, target):
    chunk = b" " * 10_000  # JSON whitespace: only the size is wrong
    chunks = small_server.settings.max_body_bytes // len(chunk) + 2
    head = (
        f"POST {target.path}?{target.query(messageOptions=4, message='Hola')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * chunks + b"0\r\n\r\n"
    request = head.encode() + body

    response = await raw_exchange(small_server.port, request)

    assert_refused(response, 413, "request_too_large")
    await assert_nothing_stored(http, target)


async def test_body_just_under_the_limit_is_read(small_server, http, target):
    body = b"{" + b" " * (small_server.settings.max_body_bytes - 2) + b"}"
    async with httpx2.AsyncClient(base_url=small_server.url, timeout=30) as small:
        response = await small.post(
            f"{target.path}?{target.query(messageOptions=4, message='Hola')}",
            content=body,
            headers={"content-type": JSON},
        )
    assert response.status_code == 200, response.text


BAD_IDS = [
    ("POST", "/v2/orders/abc/messages", "order_id_invalid"),
    ("GET", "/v2/orders/abc/messages", "order_id_invalid"),
    ("GET", "/v2/orders/abc", "order_id_invalid"),
    ("GET", "/v2/orders/1.5", "order_id_invalid"),
    ("POST", "/v2/orders/1.5/messages", "order_id_invalid"),
    ("POST", "/v2/orders/99999999999999999999999/messages", "order_id_invalid"),
    ("GET", "/v2/orders/99999999999999999999999/messages", "order_id_invalid"),
    ("GET", "/v2/orders/9223372036854775808", "order_id_invalid"),
    ("POST", "/v2/orders/0/messages", "order_id_invalid"),
    ("POST", "/v2/orders/-1/messages", "order_id_invalid"),
    ("POST", "/v2/orders/%D9%A3/messages", "order_id_invalid"),
    ("POST", "/v2/orders/1%00/messages", "order_id_invalid"),
    ("GET", "/v2/orders/abc/messages/options", "order_id_invalid"),
    ("GET", "/v2/orders/abc/messages/1", "order_id_invalid"),
    ("GET", "/v2/orders/abc/messages/1/attachment", "order_id_invalid"),
    ("GET", "/v2/orders/{order}/messages/xyz", "message_id_invalid"),
    ("GET", "/v2/orders/{order}/messages/1.5", "message_id_invalid"),
    ("GET", "/v2/orders/{order}/messages/99999999999999999999999", "message_id_invalid"),
    ("GET", "/v2/orders/{order}/messages/xyz/attachment", "message_id_invalid"),
]


@pytest.mark.parametrize(("method", "path", "code"), BAD_IDS, ids=[f"{m} {p}" for m, p, _ in BAD_IDS])
async def test_non_integer_ids_in_paths_are_400(http, target, method, path, code):
    params = target.tenant.credentials(messageOptions=4, message="Hola")

    response = await http.request(method, path.format(order=target.order_id), params=params)

    assert_refused(response, 400, code)
    await assert_nothing_stored(http, target)


FUZZ = hypothesis_settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(body=st.binary(max_size=300))
def test_random_bytes_as_json_body_are_refused_in_json(live_server, target, body):
    with httpx2.Client(base_url=live_server.url, timeout=30) as client:
        response = client.post(
            f"{target.path}?{target.query(messageOptions=4)}", content=body, headers={"content-type": JSON}
        )
        assert_refused(response)
        conversation = client.get(target.path, params=target.tenant.credentials())
    assert conversation.json()["Results"] == []


# Any code point, with lone surrogates and control characters made frequent.
CHARACTERS = st.one_of(
    st.characters(codec=None, exclude_categories=()),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from("\x00\r\n\t\x7f\u0301\u200b "),
)


@FUZZ
@given(text=st.lists(CHARACTERS, max_size=400).map("".join), as_form=st.booleans())
def test_random_text_as_message_never_gives_a_500(live_server, target, text, as_form):
    if as_form:
        # surrogatepass turns lone surrogates into bytes that are not UTF-8, as a careless client would.
        encoded = quote(text.encode("utf-8", "surrogatepass"), safe="")
        body, content_type = f"{target.query(messageOptions=4)}&message={encoded}".encode(), FORM
    else:
        body, content_type = _json_send(target, message=text), JSON
    with httpx2.Client(base_url=live_server.url, timeout=30) as client:
        response = client.post(target.path, content=body, headers={"content-type": content_type})
    assert response.status_code != 500, response.text
    if response.status_code != 200:
        assert_refused(response)
