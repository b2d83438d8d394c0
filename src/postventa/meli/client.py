"""An async client of Mercado Libre's public API: paced per application and endpoint, errors classified.

Calls raise `MeliError` carrying a `DeliveryFailure`: an error response is classified by status and
message (domain/delivery.py); a call that got no response is "unknown" when the request may have
reached Mercado Libre (so the caller reconciles before trying again) and "transient" when it
certainly did not.

Every call names the application (client id) it is made for (`application=`, the link's client id):
Mercado Libre counts calls per application and endpoint, so the budget and a 429's cool-down are
kept per application (meli/pacing.py). A call that names none counts under one shared key.

Bytes travel through a `Transport` (meli/transport.py): aiohttp by default, a scripted fake in tests.
"""

from __future__ import annotations

from typing import Any

import orjson
from limits.errors import StorageError

from postventa.domain.delivery import DeliveryFailure, FailureKind, classify_response, no_response
from postventa.meli.models import (
    MeliConversation,
    MeliMessage,
    MeliOrder,
    MeliShipment,
    TokenGrant,
    parse_caps,
    parse_conversation_status,
    parse_message,
    parse_order,
    parse_shipment,
)
from postventa.meli.pacing import DEFAULT_APPLICATION, CallBudget, NoTurnSoon
from postventa.meli.transport import (
    READ_TIMEOUT_SECONDS,
    AiohttpTransport,
    Body,
    FilePart,
    NoReply,
    Reply,
    Transport,
    endpoint_template,
    environment_proxy,
)

__all__ = [
    "DEFAULT_API_URL",
    "MeliClient",
    "MeliError",
    "Reply",
    "endpoint_template",
    "environment_proxy",
]

DEFAULT_API_URL = "https://api.mercadolibre.com"
PAGE_SIZE = 50
POST_SALE = {"tag": "post_sale"}
JSON_HEADERS = {"Content-Type": "application/json"}
NEW_FORMAT = {"x-format-new": "true"}
RATE_LIMITED = 429


class MeliError(Exception):
    """A call to Mercado Libre failed; `failure` says how."""

    def __init__(self, failure: DeliveryFailure, status: int | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.status = status


class MeliClient:
    """Mercado Libre (or the emulator, by base URL) for every application this service acts for."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        reads_per_minute: int = 500,
        writes_per_minute: int = 500,
        read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
        transport: Transport | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        """Without a `budget`, one in this process's memory at `reads_per_minute` (GET) and
        `writes_per_minute` (the others) per application and endpoint; without a `transport`,
        aiohttp with `read_timeout_seconds`."""
        self.base_url = base_url.rstrip("/")
        self.transport: Transport = transport or AiohttpTransport(
            self.base_url, read_timeout_seconds=read_timeout_seconds
        )
        self.budget = budget or CallBudget(reads_per_minute, writes_per_minute)

    async def aclose(self) -> None:
        """Close the connections (and the shared budget's, when it holds any)."""
        try:
            await self.transport.aclose()
        finally:
            await self.budget.aclose()

    async def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> TokenGrant:
        """Exchange a refresh token for an access token and the next refresh token. Not paced: the
        token endpoint is authorization, not one of the messaging resources whose limits Mercado Libre
        publishes, and a refresh is made holding the link's lock (refresh tokens rotate), where no
        turn of a budget may be waited for, nor, on SQLite, the budget's own write."""
        form = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
        data = await self._call("POST", "/oauth/token", application=client_id, data=form, paced=False)
        return TokenGrant(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or refresh_token),
            expires_in_seconds=int(data.get("expires_in") or 21600),
            user_id=data.get("user_id"),
        )

    async def me(self, token: str, *, application: str | None = None) -> dict[str, Any]:
        """The seller the token belongs to."""
        return await self._call("GET", "/users/me", application=application, token=token)

    async def send_action_guide_option(
        self,
        token: str,
        pack: int,
        option_id: str,
        *,
        template_id: str | None = None,
        variables: list[dict[str, Any]] | None = None,
        text: str | None = None,
        application: str | None = None,
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
        data = await self._call(
            "POST", path, application=application, token=token, params=POST_SALE, json=body
        )
        return parse_message(data)

    async def caps_available(
        self, token: str, pack: int, *, application: str | None = None
    ) -> dict[str, int]:
        """How many more messages each action-guide option allows in the pack (option id → count).

        An excepted pack (400 `blocked_by_excepted_case`: the action guide is closed to it, /messages
        is open) raises MeliError with the code `excepted_case`.
        """
        path = f"/messages/action_guide/packs/{pack}/caps_available"
        data = await self._call("GET", path, application=application, token=token, params=POST_SALE)
        return parse_caps(data)

    async def send_message(
        self,
        token: str,
        pack: int,
        seller_id: int,
        buyer_id: int,
        text: str,
        attachment_ids: list[str],
        *,
        application: str | None = None,
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
        data = await self._call(
            "POST", path, application=application, token=token, params=POST_SALE, json=body
        )
        return parse_message(data)

    async def upload_attachment(
        self,
        token: str,
        site_id: str,
        file_name: str,
        content: bytes,
        content_type: str,
        *,
        application: str | None = None,
    ) -> str:
        """Upload a file for a later message; returns its attachment id."""
        params = {**POST_SALE, "site_id": site_id}
        upload = FilePart("file", file_name, content, content_type)
        data = await self._call(
            "POST", "/messages/attachments", application=application, token=token, params=params, data=upload
        )
        return str(data["id"])

    async def conversation_read(
        self, token: str, pack: int, seller_id: int, *, application: str | None = None
    ) -> MeliConversation:
        """Every message of a conversation (all pages) and its `conversation_status` (blocked or not,
        and whether a messaging agent answers for the buyer), without marking anything read."""
        messages: list[MeliMessage] = []
        status: Any = None
        offset = 0
        path = f"/messages/packs/{pack}/sellers/{seller_id}"
        while True:
            params = {**POST_SALE, "mark_as_read": "false", "limit": str(PAGE_SIZE), "offset": str(offset)}
            data = await self._call("GET", path, application=application, token=token, params=params)
            if status is None:
                status = data.get("conversation_status")
            page = [parse_message(item) for item in data.get("messages") or [] if isinstance(item, dict)]
            messages.extend(page)
            total = _int_or_zero((data.get("paging") or {}).get("total"))
            offset += len(page)
            if not page or offset >= total:
                return MeliConversation(messages, parse_conversation_status(status))

    async def conversation(
        self, token: str, pack: int, seller_id: int, *, application: str | None = None
    ) -> list[MeliMessage]:
        """Every message of a conversation, without marking them read."""
        read = await self.conversation_read(token, pack, seller_id, application=application)
        return read.messages

    async def message(self, token: str, message_id: str, *, application: str | None = None) -> MeliMessage:
        """One message by id (the resource of a `messages` notification). A message Mercado Libre
        does not have (404) raises MeliError with the code `message_not_found`."""
        try:
            data = await self._call(
                "GET",
                f"/messages/{message_id}",
                application=application,
                token=token,
                params=POST_SALE,
                headers=NEW_FORMAT,
            )
        except MeliError as error:
            if error.status != 404:
                raise
            failure = DeliveryFailure(FailureKind.PERMANENT, "message_not_found", error.failure.message)
            raise MeliError(failure, 404) from error
        items = data.get("messages")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return parse_message(items[0])
        return parse_message(data)

    async def missed_feeds(self, token: str, app_id: str) -> list[dict[str, Any]]:
        """The notifications Mercado Libre could not deliver to the application's callback (kept two
        days), oldest first, as sent (`resource`, `topic`, `user_id`, ...)."""
        data = await self._call(
            "GET", "/missed_feeds", application=app_id, token=token, params={"app_id": app_id}
        )
        found = data.get("messages", data.get("items"))
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []

    async def order(self, token: str, order_id: int, *, application: str | None = None) -> MeliOrder:
        """One order."""
        return parse_order(
            await self._call("GET", f"/orders/{order_id}", application=application, token=token)
        )

    async def search_orders(
        self, token: str, seller_id: int, *, application: str | None = None
    ) -> list[MeliOrder]:
        """Every order of the seller."""
        orders: list[MeliOrder] = []
        offset = 0
        while True:
            params = {"seller": str(seller_id), "offset": str(offset), "limit": str(PAGE_SIZE)}
            data = await self._call(
                "GET", "/orders/search", application=application, token=token, params=params
            )
            page = [parse_order(item) for item in data.get("results") or [] if isinstance(item, dict)]
            orders.extend(page)
            offset += len(page)
            if not page or offset >= _int_or_zero((data.get("paging") or {}).get("total")):
                return orders

    async def shipment(self, token: str, shipment_id: int, *, application: str | None = None) -> MeliShipment:
        """A shipment in the new format, which carries the logistic type."""
        data = await self._call(
            "GET", f"/shipments/{shipment_id}", application=application, token=token, headers=NEW_FORMAT
        )
        return parse_shipment(data)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        application: str | None,
        token: str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        data: Body = None,
        paced: bool = True,
    ) -> dict[str, Any]:
        """One call, in its turn of the application's budget (unless not `paced`); the answer's JSON
        object (a bare array as `{"items": [...]}`), or MeliError."""
        application = application or DEFAULT_APPLICATION
        endpoint = endpoint_template(path)
        try:
            if paced:
                await self.budget.acquire(application, method, endpoint)
        except StorageError as error:
            raise MeliError(_budget_unavailable(error)) from error
        except NoTurnSoon as error:
            raise MeliError(_budget_wait(error.seconds)) from error
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            all_headers.update(JSON_HEADERS)
            data = orjson.dumps(json)
        try:
            reply = await self.transport.exchange(
                method, self.base_url + path, params=params, headers=all_headers, data=data
            )
        except NoReply as error:
            # The request may have left: for a write the outcome is unknown; a read is simply retried.
            raise MeliError(no_response(error.may_have_arrived and method != "GET", str(error))) from error
        if 200 <= reply.status < 300:
            return _json_object(reply)
        failure = classify_response(reply.status, _error_text(reply), _retry_after(reply))
        if reply.status == RATE_LIMITED:
            await self._cool_down(application, method, endpoint, failure.retry_after_seconds)
        if method == "GET" and failure.kind is FailureKind.UNKNOWN:
            failure = DeliveryFailure(FailureKind.TRANSIENT, failure.code, failure.message)
        raise MeliError(failure, reply.status)

    async def _cool_down(self, application: str, method: str, endpoint: str, seconds: float | None) -> None:
        try:
            await self.budget.cool_down(application, method, endpoint, seconds)
        except StorageError:
            pass  # this process still cools down (kept locally); the 429 itself is what the caller needs


def _budget_wait(seconds: float) -> DeliveryFailure:
    """The application's budget (or a cool-down after a 429) has no turn soon: nothing was sent."""
    return DeliveryFailure(
        FailureKind.TRANSIENT,
        "marketplace_budget_wait",
        f"Mercado Libre's call budget for this application and endpoint has no turn for {seconds:.1f} s;"
        " nothing was sent.",
        seconds,
    )


def _budget_unavailable(error: StorageError) -> DeliveryFailure:
    detail = type(error.storage_error).__name__
    return DeliveryFailure(
        FailureKind.TRANSIENT,
        "marketplace_budget_unavailable",
        f"The Mercado Libre call budget cannot be checked right now ({detail}); nothing was sent.",
    )


def _int_or_zero(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


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
