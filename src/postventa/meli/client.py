"""An async client of Mercado Libre's public API (aiohttp), rate-limit aware, errors classified.

Calls raise `MeliError` carrying a `DeliveryFailure`: an error response is classified by status and
message; a call that got no response is "unknown" when the request may have reached Mercado Libre
(so the caller reconciles before trying again) and "transient" when it certainly did not.

aiohttp rather than httpx2 (used everywhere else) because every delivered message is one call here:
an exchange costs 0.10-0.13 ms of CPU through aiohttp and 0.65-0.83 ms through httpx2 (measured on
loopback, docs/performance.md), and the worker's throughput is its CPU per message.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from postventa.domain.delivery import DeliveryFailure, FailureKind, classify_response, no_response
from postventa.meli.models import (
    MeliMessage,
    MeliOrder,
    MeliShipment,
    TokenGrant,
    parse_message,
    parse_order,
    parse_shipment,
)
from postventa.metrics import MELI_REQUEST_DURATION, MELI_REQUESTS

DEFAULT_API_URL = "https://api.mercadolibre.com"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0
PAGE_SIZE = 50
POST_SALE = {"tag": "post_sale"}
ID_SEGMENT_MIN_CHARS = 24  # a path segment this long is an id even without digits
MAX_CONNECTIONS = 100
JSON_HEADERS = {"Content-Type": "application/json"}


class MeliError(Exception):
    """A call to Mercado Libre failed; `failure` says how."""

    def __init__(self, failure: DeliveryFailure, status: int | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.status = status


class RequestPacer:
    """Keeps calls under a per-minute budget (Mercado Libre: 500 reads and 500 writes a minute)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.sent: deque[float] = deque()
        self.lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        """Return when one more call fits in the last minute."""
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= 60:
                    self.sent.popleft()
                if len(self.sent) < self.per_minute:
                    self.sent.append(now)
                    return
                await asyncio.sleep(60 - (now - self.sent[0]))


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY or HTTP_PROXY, by its scheme, in either
    case), or None: none is named, or NO_PROXY exempts the host. The standard library's reading."""
    parts = urlsplit(url)
    if parts.hostname and proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


class MeliClient:
    """One application's connection to Mercado Libre (or to the emulator, by base URL)."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        reads_per_minute: int = 500,
        writes_per_minute: int = 500,
        read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Waiting for a free connection counts as connecting: either way nothing was sent yet.
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=read_timeout_seconds,
            sock_connect=CONNECT_TIMEOUT_SECONDS,
            sock_read=read_timeout_seconds,
        )
        self.reads = RequestPacer(reads_per_minute)
        self.writes = RequestPacer(writes_per_minute)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def aclose(self) -> None:
        """Close the connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, opened on first use: aiohttp binds it to the running event loop, and a
        client made before the loop runs (or used by a test from several loops) opens one per loop."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                timeout=self.timeout,
                headers={"Accept": "application/json"},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                # HTTPS_PROXY / HTTP_PROXY and NO_PROXY, read once for the one host this client
                # calls. aiohttp's trust_env reads them (and ~/.netrc) on every request, each time on a
                # thread: 15% of the worker's CPU (docs/performance.md).
                proxy=environment_proxy(self.base_url),
            )
            self._session, self._session_loop = session, loop
        return session

    async def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> TokenGrant:
        """Exchange a refresh token for an access token and the next refresh token."""
        form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        data = await self._call("POST", "/oauth/token", data=form)
        return TokenGrant(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or refresh_token),
            expires_in_seconds=int(data.get("expires_in") or 21600),
            user_id=data.get("user_id"),
        )

    async def me(self, token: str) -> dict[str, Any]:
        """The seller the token belongs to."""
        return await self._call("GET", "/users/me", token=token)

    async def send_action_guide_option(
        self,
        token: str,
        pack: int,
        option_id: str,
        *,
        template_id: str | None = None,
        variables: list[dict[str, Any]] | None = None,
        text: str | None = None,
    ) -> MeliMessage:
        """A first contact through the action guide: a template (with vars) or free text."""
        body: dict[str, Any] = {"option_id": option_id}
        if template_id is not None:
            body["template_id"] = template_id
        if variables is not None:
            body["vars"] = variables
        if text is not None:
            body["text"] = text
        path = f"/messages/action_guide/packs/{pack}/option"
        return parse_message(await self._call("POST", path, token=token, params=POST_SALE, json=body))

    async def send_message(
        self, token: str, pack: int, seller_id: int, buyer_id: int, text: str, attachment_ids: list[str]
    ) -> MeliMessage:
        """A message in an open conversation (after the buyer wrote)."""
        body: dict[str, Any] = {
            "from": {"user_id": str(seller_id)},
            "to": {"user_id": str(buyer_id)},
            "text": text,
        }
        if attachment_ids:
            body["attachments"] = attachment_ids
        path = f"/messages/packs/{pack}/sellers/{seller_id}"
        return parse_message(await self._call("POST", path, token=token, params=POST_SALE, json=body))

    async def upload_attachment(
        self, token: str, site_id: str, file_name: str, content: bytes, content_type: str
    ) -> str:
        """Upload a file for a later message; returns its attachment id."""
        form = aiohttp.FormData()
        form.add_field("file", content, filename=file_name, content_type=content_type)
        params = {**POST_SALE, "site_id": site_id}
        data = await self._call("POST", "/messages/attachments", token=token, params=params, data=form)
        return str(data["id"])

    async def conversation(self, token: str, pack: int, seller_id: int) -> list[MeliMessage]:
        """Every message of a conversation, without marking them read."""
        messages: list[MeliMessage] = []
        offset = 0
        while True:
            params = {**POST_SALE, "mark_as_read": "false", "limit": str(PAGE_SIZE), "offset": str(offset)}
            data = await self._call(
                "GET", f"/messages/packs/{pack}/sellers/{seller_id}", token=token, params=params
            )
            page = [parse_message(item) for item in data.get("messages") or [] if isinstance(item, dict)]
            messages.extend(page)
            total = int((data.get("paging") or {}).get("total") or 0)
            offset += len(page)
            if not page or offset >= total:
                return messages

    async def message(self, token: str, message_id: str) -> MeliMessage:
        """One message by id (the resource of a `messages` notification)."""
        headers = {"x-format-new": "true"}
        data = await self._call(
            "GET", f"/messages/{message_id}", token=token, params=POST_SALE, headers=headers
        )
        items = data.get("messages")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return parse_message(items[0])
        return parse_message(data)

    async def order(self, token: str, order_id: int) -> MeliOrder:
        """One order."""
        return parse_order(await self._call("GET", f"/orders/{order_id}", token=token))

    async def search_orders(self, token: str, seller_id: int) -> list[MeliOrder]:
        """Every order of the seller."""
        orders: list[MeliOrder] = []
        offset = 0
        while True:
            params = {"seller": str(seller_id), "offset": str(offset), "limit": str(PAGE_SIZE)}
            data = await self._call("GET", "/orders/search", token=token, params=params)
            page = [parse_order(item) for item in data.get("results") or [] if isinstance(item, dict)]
            orders.extend(page)
            offset += len(page)
            if not page or offset >= int((data.get("paging") or {}).get("total") or 0):
                return orders

    async def shipment(self, token: str, shipment_id: int) -> MeliShipment:
        """A shipment in the new format, which carries the logistic type."""
        data = await self._call(
            "GET", f"/shipments/{shipment_id}", token=token, headers={"x-format-new": "true"}
        )
        return parse_shipment(data)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        await (self.reads if method == "GET" else self.writes).wait_turn()
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            all_headers.update(JSON_HEADERS)
            data = orjson.dumps(json)
        try:
            reply = await self._exchange(method, path, params=params, headers=all_headers, data=data)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            raise MeliError(no_response(False, _describe(error))) from error
        except (TimeoutError, aiohttp.ClientError) as error:
            # The request may have left: for a write the outcome is unknown; a read is simply retried.
            raise MeliError(no_response(method != "GET", _describe(error))) from error
        if 200 <= reply.status < 300:
            return _json_object(reply)
        failure = classify_response(reply.status, _error_text(reply), _retry_after(reply))
        if method == "GET" and failure.kind is FailureKind.UNKNOWN:
            failure = DeliveryFailure(FailureKind.TRANSIENT, failure.code, failure.message)
        raise MeliError(failure, reply.status)

    async def _exchange(self, method: str, path: str, **request: Any) -> Reply:
        """One HTTP exchange, read whole, counted and timed by endpoint template and status (or why
        none came)."""
        endpoint = endpoint_template(path)
        status = "error"
        started = time.perf_counter()
        try:
            async with self._http().request(
                method, self.base_url + path, allow_redirects=False, **request
            ) as response:
                reply = Reply(response.status, response.headers, await response.read())
            status = str(reply.status)
            return reply
        except (TimeoutError, aiohttp.ServerTimeoutError):
            status = "timeout"
            raise
        except aiohttp.ClientError:
            status = "connection"
            raise
        finally:
            MELI_REQUESTS.labels(method, endpoint, status).inc()
            MELI_REQUEST_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class Reply:
    """A response read whole."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _describe(error: BaseException) -> str:
    """What went wrong, by name (a timeout's own text is often empty)."""
    detail = str(error)
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def endpoint_template(path: str) -> str:
    """The path with its ids as `{id}` (`/messages/packs/{id}/sellers/{id}`): a bounded metric label."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(
        "{id}" if any(c.isdigit() for c in segment) or len(segment) >= ID_SEGMENT_MIN_CHARS else segment
        for segment in segments
    )


def _json_object(response: Reply) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as error:
        failure = DeliveryFailure(
            FailureKind.UNKNOWN, "marketplace_bad_response", "Mercado Libre sent no JSON."
        )
        raise MeliError(failure, response.status) from error
    if isinstance(data, list):
        return {"items": data}
    return data if isinstance(data, dict) else {}


def _error_text(response: Reply) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = [data.get(key) for key in ("message", "error", "code", "cause")]
    return " ".join(str(part) for part in parts if part)


def _retry_after(response: Reply) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
