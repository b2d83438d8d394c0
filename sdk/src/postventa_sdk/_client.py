"""`Client` (blocking) and `AsyncClient` (asyncio): the same calls, sent with retries.

Both authenticate with the `X-API-Key` header and name the account in `accountId`. The calls, the
answers and the retry decisions are shared (`_calls`, `_retry`); each class only sends and waits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx2

from postventa_sdk import _calls
from postventa_sdk._calls import AttachmentSource, Call
from postventa_sdk._retry import RetryPolicy, log_retry
from postventa_sdk.accounts import Account, Marketplace
from postventa_sdk.errors import TransportError
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

__version__ = "0.1.0"

T = TypeVar("T")
HttpT = TypeVar("HttpT", httpx2.Client, httpx2.AsyncClient)

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_PAGE_SIZE = 100


class _Wait:
    """Retry after this many seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _Base(Generic[HttpT]):
    """What both clients share: the account, the retry policy and the decision after each attempt."""

    _http: HttpT

    def __init__(self, account_id: int, max_retries: int, retry: RetryPolicy | None) -> None:
        self.account_id = int(account_id)
        self.retry = retry if retry is not None else RetryPolicy(max_retries=max_retries)

    @staticmethod
    def _http_options(base_url: str, api_key: str, timeout: float | httpx2.Timeout) -> dict[str, Any]:
        return {
            "base_url": base_url,
            "timeout": timeout,
            "headers": {
                "X-API-Key": api_key,
                "Accept": "application/json",
                "User-Agent": f"postventa-sdk/{__version__}",
            },
        }

    def _settle(
        self, call: Call[T], retries: int, response: httpx2.Response | None, failure: Exception | None
    ) -> T | _Wait:
        """The call's result, or how long to wait before the next attempt; raises when giving up."""
        if response is not None and response.is_success:
            return call.parse(response)
        if response is not None:
            error = _calls.error_from_response(response)
            wait = self.retry.after_error(retries, error, retry_safe=call.retry_safe)
            if wait is None:
                raise error
            why = f"{error.status} {error.code}"
        else:
            wait = self.retry.after_no_response(retries, retry_safe=call.retry_safe)
            if wait is None:
                raise TransportError(f"{call.method} {call.path}: no response ({failure!r})") from failure
            why = f"no response ({type(failure).__name__})"
        log_retry(call.method, call.path, retries + 1, self.retry.max_retries, wait, why)
        return _Wait(wait)


class Client(_Base[httpx2.Client]):
    """A blocking client of one account; use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        account_id: int,
        *,
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        super().__init__(account_id, max_retries, retry)
        self._http = httpx2.Client(transport=transport, **self._http_options(base_url, api_key, timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        retries = 0
        while True:
            response, failure = None, None
            try:
                response = self._http.send(call.build(self._http))
            except httpx2.TransportError as error:
                failure = error
            outcome = self._settle(call, retries, response, failure)
            if not isinstance(outcome, _Wait):
                return outcome
            time.sleep(outcome.seconds)
            retries += 1

    def send_message(
        self,
        order_id: int,
        *,
        reason: Reason | int | str,
        text: str | None = None,
        attachment: AttachmentSource | None = None,
        attachment_name: str | None = None,
        as_base64: bool = False,
        idempotency_key: str | None = None,
    ) -> SentMessage:
        """Send a message to the order's buyer; retried safely under one Idempotency-Key."""
        return self._run(
            _calls.send_message(
                self.account_id,
                order_id,
                reason=reason,
                text=text,
                attachment=attachment,
                attachment_name=attachment_name,
                as_base64=as_base64,
                idempotency_key=idempotency_key,
            )
        )

    def conversation(self, order_id: int) -> Conversation:
        """The order's conversation (its pack's), both directions, oldest first."""
        return self._run(_calls.conversation(self.account_id, order_id))

    def message(self, order_id: int, message_id: int) -> Message:
        """One message of the order's conversation."""
        return self._run(_calls.message(self.account_id, order_id, message_id))

    def download_attachment(self, order_id: int, message_id: int) -> DownloadedFile:
        """A message's attachment: its bytes, name and media type."""
        return self._run(_calls.download_attachment(self.account_id, order_id, message_id))

    def message_options(self, order_id: int) -> list[ReasonOption]:
        """For each reason: can it be sent now, and if not, the status and code a send would get."""
        return self._run(_calls.message_options(self.account_id, order_id))

    def order(self, order_id: int) -> Order:
        """One order of the account."""
        return self._run(_calls.order(self.account_id, order_id))

    def accounts(self) -> list[Account]:
        """Every account the API key opens (not only this client's), oldest first."""
        return self._run(_calls.accounts())

    def marketplaces(self, account_id: int | None = None) -> list[Marketplace]:
        """The account's marketplace links (this client's account by default); empty when not linked."""
        return self._run(_calls.marketplaces(self.account_id if account_id is None else account_id))

    def orders_page(self, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0, **filters: Any) -> OrdersPage:
        """One page of the account's orders (filters as for `orders`)."""
        return self._run(_calls.orders_page(self.account_id, limit=limit, offset=offset, **filters))

    def orders(
        self,
        *,
        status_type: str | int | None = None,
        date_created_from: dt.datetime | dt.date | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        sort: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Order]:
        """Every order of the account matching the filters, fetching page after page as it goes."""
        filters = {
            "status_type": status_type,
            "date_created_from": date_created_from,
            "id_from": id_from,
            "id_to": id_to,
            "sort": sort,
        }
        offset: int | None = 0
        while offset is not None:
            page = self.orders_page(limit=page_size, offset=offset, **filters)
            yield from page.orders
            offset = _calls.next_offset(page)


class AsyncClient(_Base[httpx2.AsyncClient]):
    """The asyncio client of one account; use it with `async with`, or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        account_id: int,
        *,
        timeout: float | httpx2.Timeout = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(account_id, max_retries, retry)
        self._http = httpx2.AsyncClient(transport=transport, **self._http_options(base_url, api_key, timeout))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        retries = 0
        while True:
            response, failure = None, None
            try:
                response = await self._http.send(call.build(self._http))
            except httpx2.TransportError as error:
                failure = error
            outcome = self._settle(call, retries, response, failure)
            if not isinstance(outcome, _Wait):
                return outcome
            await asyncio.sleep(outcome.seconds)
            retries += 1

    async def send_message(
        self,
        order_id: int,
        *,
        reason: Reason | int | str,
        text: str | None = None,
        attachment: AttachmentSource | None = None,
        attachment_name: str | None = None,
        as_base64: bool = False,
        idempotency_key: str | None = None,
    ) -> SentMessage:
        """Send a message to the order's buyer; retried safely under one Idempotency-Key."""
        return await self._run(
            _calls.send_message(
                self.account_id,
                order_id,
                reason=reason,
                text=text,
                attachment=attachment,
                attachment_name=attachment_name,
                as_base64=as_base64,
                idempotency_key=idempotency_key,
            )
        )

    async def conversation(self, order_id: int) -> Conversation:
        """The order's conversation (its pack's), both directions, oldest first."""
        return await self._run(_calls.conversation(self.account_id, order_id))

    async def message(self, order_id: int, message_id: int) -> Message:
        """One message of the order's conversation."""
        return await self._run(_calls.message(self.account_id, order_id, message_id))

    async def download_attachment(self, order_id: int, message_id: int) -> DownloadedFile:
        """A message's attachment: its bytes, name and media type."""
        return await self._run(_calls.download_attachment(self.account_id, order_id, message_id))

    async def message_options(self, order_id: int) -> list[ReasonOption]:
        """For each reason: can it be sent now, and if not, the status and code a send would get."""
        return await self._run(_calls.message_options(self.account_id, order_id))

    async def order(self, order_id: int) -> Order:
        """One order of the account."""
        return await self._run(_calls.order(self.account_id, order_id))

    async def accounts(self) -> list[Account]:
        """Every account the API key opens (not only this client's), oldest first."""
        return await self._run(_calls.accounts())

    async def marketplaces(self, account_id: int | None = None) -> list[Marketplace]:
        """The account's marketplace links (this client's account by default); empty when not linked."""
        return await self._run(_calls.marketplaces(self.account_id if account_id is None else account_id))

    async def orders_page(
        self, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0, **filters: Any
    ) -> OrdersPage:
        """One page of the account's orders (filters as for `orders`)."""
        return await self._run(_calls.orders_page(self.account_id, limit=limit, offset=offset, **filters))

    async def orders(
        self,
        *,
        status_type: str | int | None = None,
        date_created_from: dt.datetime | dt.date | None = None,
        id_from: int | None = None,
        id_to: int | None = None,
        sort: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[Order]:
        """Every order of the account matching the filters, fetching page after page as it goes."""
        filters = {
            "status_type": status_type,
            "date_created_from": date_created_from,
            "id_from": id_from,
            "id_to": id_to,
            "sort": sort,
        }
        offset: int | None = 0
        while offset is not None:
            page = await self.orders_page(limit=page_size, offset=offset, **filters)
            for found in page.orders:
                yield found
            offset = _calls.next_offset(page)
