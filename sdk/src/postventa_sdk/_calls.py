"""Each API operation as a `Call`: the request to make and how to read its answer, with no I/O.

`Client` and `AsyncClient` run the same calls; only the sending (and the waiting between retries)
differs between them.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import unquote

import httpx2

from postventa_sdk.accounts import Account, Marketplace
from postventa_sdk.errors import ApiError, RateLimited, UnexpectedResponse, error_class
from postventa_sdk.models import (
    Conversation,
    DownloadedFile,
    Message,
    Order,
    OrdersPage,
    ReasonOption,
    SentMessage,
)
from postventa_sdk.reasons import Reason

T = TypeVar("T")

AttachmentSource = str | os.PathLike[str] | bytes | IO[bytes]
"""A file to attach: a path, its bytes (give `attachment_name`), or a binary file object."""

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "txt": "text/plain",
}
_ERROR_TEXT_CHARACTERS = 500
_BODY_REQUEST_ID = re.compile(r"Request id: ([\w-]{1,128})")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request (rebuilt identically for every retry) and the function that reads its success."""

    method: str
    path: str
    params: dict[str, str | int]
    parse: Callable[[httpx2.Response], T]
    headers: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The send's key, reused by every retry of it."""
        return self.headers.get(IDEMPOTENCY_KEY_HEADER)

    @property
    def retry_safe(self) -> bool:
        """Reads, and sends carrying an Idempotency-Key, can be repeated without a second effect."""
        return self.method == "GET" or self.idempotency_key is not None

    def build(self, http: httpx2.Client | httpx2.AsyncClient) -> httpx2.Request:
        """The request for one attempt."""
        return http.build_request(
            self.method,
            self.path,
            params=self.params,
            headers=self.headers,
            json=self.json,
            data=self.data,
            files=self.files,
        )


# --- reading answers ------------------------------------------------------------------------------


def request_id(response: httpx2.Response) -> str | None:
    """The server's X-Request-Id, to quote when asking about a request (a plain-text 500 names it
    in its body: "Internal server error. Request id: …")."""
    found = response.headers.get("x-request-id")
    if found is None and response.status_code >= 500:
        named = _BODY_REQUEST_ID.search(response.text[:_ERROR_TEXT_CHARACTERS])
        found = named.group(1) if named else None
    return found


def retry_after_seconds(headers: httpx2.Headers) -> float | None:
    """The wait a 429 (or 503) asks for: the larger of `x-ratelimit-retryafter` and `Retry-After`."""
    waits: list[float] = []
    for name in ("x-ratelimit-retryafter", "retry-after"):
        try:
            seconds = float(headers.get(name, ""))
        except ValueError:
            continue  # absent, or an HTTP date: the backoff applies instead
        if seconds >= 0:
            waits.append(seconds)
    return max(waits) if waits else None


def error_from_response(response: httpx2.Response) -> ApiError:
    """The exception for an error response: its class by status, the body's `Code` and `Message`."""
    status = response.status_code
    code, message = f"http_{status}", response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("Code"), str):
        code, message = body["Code"], str(body.get("Message") or message)
    elif response.text.strip():
        message = response.text.strip()[:_ERROR_TEXT_CHARACTERS]
    kind = error_class(status)
    options: dict[str, Any] = {"request_id": request_id(response), "headers": response.headers}
    if issubclass(kind, RateLimited):
        options["retry_after"] = retry_after_seconds(response.headers)
    return kind(status, code, message, **options)


def _json(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponse(
            response.status_code, "the body is not JSON", request_id=request_id(response)
        ) from None


def _reader(read: Callable[[Any], T]) -> Callable[[httpx2.Response], T]:
    """Parse a JSON answer with `read`; a body of another shape is an UnexpectedResponse."""

    def parse(response: httpx2.Response) -> T:
        try:
            return read(_json(response))
        except (KeyError, TypeError, ValueError) as error:
            raise UnexpectedResponse(
                response.status_code, f"not the documented body ({error!r})", request_id=request_id(response)
            ) from None

    return parse


# --- the operations -------------------------------------------------------------------------------


def _messages_path(order_id: int) -> str:
    return f"/v2/orders/{int(order_id)}/messages"


def send_message(
    account_id: int,
    order_id: int,
    *,
    reason: Reason | int | str,
    text: str | None,
    attachment: AttachmentSource | None,
    attachment_name: str | None,
    as_base64: bool,
    idempotency_key: str | None,
) -> Call[SentMessage]:
    """POST …/messages: JSON without a file; with one, multipart (or base64 JSON when asked)."""
    number = int(Reason.parse(reason))
    key = idempotency_key or str(uuid.uuid4())
    call_fields: dict[str, Any] = {}
    if attachment is None:
        call_fields["json"] = _without_none({"messageOptions": number, "message": text})
    else:
        file_name, content = load_attachment(attachment, attachment_name)
        stem, extension = split_file_name(file_name)
        if as_base64:
            call_fields["json"] = _without_none(
                {
                    "messageOptions": number,
                    "message": text,
                    "fileBase64": base64.b64encode(content).decode("ascii"),
                    "documentName": stem,
                    "documentExtension": extension,
                }
            )
        else:
            call_fields["data"] = _without_none({"messageOptions": str(number), "message": text})
            media_type = CONTENT_TYPES.get(extension.lower(), "application/octet-stream")
            call_fields["files"] = {"file": (file_name, content, media_type)}
    return Call(
        "POST",
        _messages_path(order_id),
        {"accountId": account_id},
        _sent_reader(int(order_id), key),
        headers={IDEMPOTENCY_KEY_HEADER: key},
        **call_fields,
    )


def _sent_reader(order_id: int, key: str) -> Callable[[httpx2.Response], SentMessage]:
    def parse(response: httpx2.Response) -> SentMessage:
        body = _json(response)
        if not (isinstance(body, str) and body.isdigit()):
            raise UnexpectedResponse(
                response.status_code,
                f"expected the message id, got {body!r}",
                request_id=request_id(response),
            )
        return SentMessage(
            id=int(body),
            order_id=order_id,
            location=response.headers.get("location"),
            message_ignored=response.headers.get("x-message-ignored", "").lower() == "true",
            replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
            idempotency_key=key,
            request_id=request_id(response),
        )

    return parse


def conversation(account_id: int, order_id: int) -> Call[Conversation]:
    """GET …/messages: the conversation, both directions, oldest first."""
    return Call("GET", _messages_path(order_id), {"accountId": account_id}, _reader(Conversation.from_json))


def message(account_id: int, order_id: int, message_id: int) -> Call[Message]:
    """GET …/messages/{messageId}."""
    path = f"{_messages_path(order_id)}/{int(message_id)}"
    return Call("GET", path, {"accountId": account_id}, _reader(Message.from_json))


def download_attachment(account_id: int, order_id: int, message_id: int) -> Call[DownloadedFile]:
    """GET …/messages/{messageId}/attachment: the file's bytes and name."""
    path = f"{_messages_path(order_id)}/{int(message_id)}/attachment"

    def parse(response: httpx2.Response) -> DownloadedFile:
        return DownloadedFile(
            file_name=file_name_of(response.headers.get("content-disposition", "")) or "attachment",
            content_type=response.headers.get("content-type", "application/octet-stream"),
            content=response.content,
        )

    return Call("GET", path, {"accountId": account_id}, parse)


def message_options(account_id: int, order_id: int) -> Call[list[ReasonOption]]:
    """GET …/messages/options: for each reason, whether it can be sent now."""
    path = f"{_messages_path(order_id)}/options"
    return Call(
        "GET",
        path,
        {"accountId": account_id},
        _reader(lambda body: [ReasonOption.from_json(item) for item in body["Results"]]),
    )


def order(account_id: int, order_id: int) -> Call[Order]:
    """GET /v2/orders/{orderId}."""
    return Call("GET", f"/v2/orders/{int(order_id)}", {"accountId": account_id}, _reader(Order.from_json))


def orders_page(
    account_id: int,
    *,
    limit: int,
    offset: int,
    status_type: str | int | None = None,
    date_created_from: dt.datetime | dt.date | None = None,
    id_from: int | None = None,
    id_to: int | None = None,
    sort: str | None = None,
) -> Call[OrdersPage]:
    """GET /v2/orders: one page, with the filters the server takes."""
    params: dict[str, str | int] = {"accountId": account_id, "limit": limit, "offset": offset}
    optional: dict[str, str | int | None] = {
        "statusType": status_type,
        "dateCreatedFrom": _utc_text(date_created_from),
        "idFrom": id_from,
        "idTo": id_to,
        "sort": sort,
    }
    params.update({name: value for name, value in optional.items() if value is not None})
    return Call("GET", "/v2/orders", params, _reader(OrdersPage.from_json))


def accounts() -> Call[list[Account]]:
    """GET /v2/accounts: every account the key opens, in one answer."""
    return Call(
        "GET", "/v2/accounts", {}, _reader(lambda body: [Account.from_json(item) for item in body["Results"]])
    )


def marketplaces(account_id: int) -> Call[list[Marketplace]]:
    """GET /v2/accounts/{accountId}/marketplaces: the account's marketplace links."""
    return Call(
        "GET",
        f"/v2/accounts/{int(account_id)}/marketplaces",
        {},
        _reader(lambda body: [Marketplace.from_json(item) for item in body["Results"]]),
    )


def next_offset(page: OrdersPage) -> int | None:
    """Where the page after this one starts; None when this was the last."""
    following = page.offset + len(page.orders)
    return following if page.orders and following < page.total else None


# --- inputs ---------------------------------------------------------------------------------------


def load_attachment(source: AttachmentSource, name: str | None) -> tuple[str, bytes]:
    """The file's name and bytes from a path, bytes (with `name`) or a binary file object."""
    if isinstance(source, bytes | bytearray | memoryview):
        if not name:
            raise ValueError("attachment_name is required when the attachment is given as bytes")
        return name, bytes(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return name or path.name, path.read_bytes()
    content = source.read()
    if not isinstance(content, bytes):
        raise TypeError("the attachment file object must be opened in binary mode ('rb')")
    file_name = name or Path(str(getattr(source, "name", "") or "")).name
    if not file_name:
        raise ValueError("attachment_name is required for a file object without a name")
    return file_name, content


def split_file_name(file_name: str) -> tuple[str, str]:
    """`factura.pdf` → (`factura`, `pdf`); the server needs the extension to check the content."""
    stem, dot, extension = file_name.rpartition(".")
    if not dot or not stem or not extension:
        raise ValueError(f"the attachment's name needs an extension (pdf, jpg, png, txt): {file_name!r}")
    return stem, extension


def file_name_of(content_disposition: str) -> str | None:
    """The name in a Content-Disposition: the UTF-8 `filename*` first, else the plain `filename`."""
    plain = None
    for part in content_disposition.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "filename*" and value.lower().startswith("utf-8''"):
            return unquote(value[len("utf-8''") :])
        if name.lower() == "filename":
            plain = value.strip('"')
    return plain


def _utc_text(value: dt.datetime | dt.date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}
