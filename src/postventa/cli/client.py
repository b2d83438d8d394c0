"""`postventa send`, `postventa conversation` and `postventa options`: the public API from a shell.

These commands are a client like any integrator's: they speak HTTP to a running postventa through
the postventa-sdk (never to its database), with the URL, API key and account from options or from
POSTVENTA_URL, POSTVENTA_API_KEY and POSTVENTA_ACCOUNT_ID. The SDK is a distribution of its own
(`pip install ./sdk`), imported only when one of these commands runs: the server installs and serves
without it.

Each kind of failure has its own exit code (see `EXIT_CODES`), so that scripts can tell "fix the
request" from "wait for the buyer" from "try again later".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from postventa.cli.runtime import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_NOT_READY, emit, report_error

if TYPE_CHECKING:
    from postventa_sdk import Client, Conversation, Message, PostventaError, ReasonOption, SentMessage

EXIT_UNEXPECTED = 1
EXIT_BAD_REQUEST = 5
EXIT_NOT_ALLOWED = 6
EXIT_CONFLICT = 7
EXIT_PRECONDITION_FAILED = 8
EXIT_RATE_LIMITED = 9
EXIT_SERVER_ERROR = 10
EXIT_NO_RESPONSE = 11

EXIT_CODES: dict[int, str] = {
    0: "success",
    EXIT_UNEXPECTED: "unexpected failure (a bug: Python prints the traceback)",
    EXIT_INVALID: "usage error: a missing or invalid option or argument, checked before any request",
    EXIT_NOT_FOUND: "404 not found: the order or message is not in the account",
    EXIT_NOT_READY: "not ready: postventa-sdk is not installed (pip install ./sdk)",
    EXIT_BAD_REQUEST: "400 (and 413, 414, 415, 422, any other 4xx): the request is invalid",
    EXIT_NOT_ALLOWED: "401 or 403: the API key is unknown or revoked, or does not open the account",
    EXIT_CONFLICT: "409: the conversation refuses the message now (e.g. awaiting_buyer_reply)",
    EXIT_PRECONDITION_FAILED: "412: the order does not allow the reason (site, logistic type, status)",
    EXIT_RATE_LIMITED: "429: still rate limited after the retries",
    EXIT_SERVER_ERROR: "5xx after the retries, or an answer that is not the API's",
    EXIT_NO_RESPONSE: "no response after the retries: refused, dropped or timed out",
}
"""What each exit code of these commands means; docs/sdk.md prints the same table."""

SDK_MISSING = (
    "postventa_sdk_missing: this command uses the client library; install it with `pip install ./sdk`"
)
STATUS_STYLES = {
    "queued": "yellow",
    "sending": "cyan",
    "pending_moderation": "cyan",
    "sent": "green",
    "received": "blue",
    "moderated": "magenta",
    "failed": "bold red",
}

OrderId = Annotated[int, typer.Argument(metavar="ORDER_ID", help="The order (postventa id).")]
Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="POSTVENTA_URL", show_envvar=True, help="postventa's base URL: http://host:port."
    ),
]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar="POSTVENTA_API_KEY",
        show_envvar=True,
        help="The API key (prefer the variable: options show in the process list).",
    ),
]
AccountId = Annotated[
    int, typer.Option("--account-id", envvar="POSTVENTA_ACCOUNT_ID", show_envvar=True, help="The account.")
]
Timeout = Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer.")]
MaxRetries = Annotated[
    int, typer.Option(min=0, help="Retries after a 429, a 5xx or a lost connection (0: none).")
]


@dataclass(frozen=True)
class Connection:
    """Where the API is and whose it is: what every command is given."""

    url: str
    api_key: str
    account_id: int
    timeout: float
    max_retries: int


def send(
    order_id: OrderId,
    reason: Annotated[
        str, typer.Option(help="OTHER, REQUEST_VARIANTS, ... (any case) or its number, 1 to 5.")
    ],
    url: Url,
    api_key: ApiKey,
    account_id: AccountId,
    text: Annotated[str | None, typer.Option(help="The message (free-text reasons).")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, readable=True, help="A file to attach: pdf, jpg, png, txt."
        ),
    ] = None,
    base64: Annotated[bool, typer.Option("--base64", help="Send the file as base64 JSON.")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Reuse it to repeat a send safely (default: a new one).")
    ] = None,
    timeout: Timeout = 30.0,
    max_retries: MaxRetries = 3,
) -> None:
    """Send a message to the order's buyer; prints the new message's id as one JSON line."""
    connection = _checked(url, api_key, account_id, timeout, max_retries)
    with connected(connection) as client:
        from postventa_sdk import Reason

        try:
            chosen = Reason.parse(reason)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="'--reason'") from None
        sent = client.send_message(
            order_id,
            reason=chosen,
            text=text,
            attachment=file,
            as_base64=base64,
            idempotency_key=idempotency_key,
        )
    emit(_sent_document(sent))


def conversation(
    order_id: OrderId,
    url: Url,
    api_key: ApiKey,
    account_id: AccountId,
    timeout: Timeout = 30.0,
    max_retries: MaxRetries = 3,
) -> None:
    """Show the order's conversation: both directions, oldest first, each message with its status."""
    with connected(_checked(url, api_key, account_id, timeout, max_retries)) as client:
        found = client.conversation(order_id)
    Console(highlight=False).print(conversation_view(found))


def options(
    order_id: OrderId,
    url: Url,
    api_key: ApiKey,
    account_id: AccountId,
    timeout: Timeout = 30.0,
    max_retries: MaxRetries = 3,
) -> None:
    """Show, for each reason, whether it can be sent to the order now and, if not, why."""
    with connected(_checked(url, api_key, account_id, timeout, max_retries)) as client:
        found = client.message_options(order_id)
    Console(highlight=False).print(options_view(order_id, found))


# --- the client and its failures ------------------------------------------------------------------


def _checked(url: str, api_key: str, account_id: int, timeout: float, max_retries: int) -> Connection:
    """The options, with a URL the client can use (a usage error, exit 2, otherwise)."""
    if not url.lower().startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="'--url'")
    return Connection(url.rstrip("/"), api_key, account_id, timeout, max_retries)


@contextmanager
def connected(connection: Connection) -> Iterator[Client]:
    """The SDK's client of the account. An SDK error is reported on stderr and exits with its code;
    without the SDK installed, the command exits 4 saying how to install it."""
    try:
        from postventa_sdk import Client, PostventaError
    except ImportError:
        report_error(SDK_MISSING)
        raise typer.Exit(EXIT_NOT_READY) from None
    try:
        with Client(
            connection.url,
            connection.api_key,
            connection.account_id,
            timeout=connection.timeout,
            max_retries=connection.max_retries,
        ) as client:
            yield client
    except PostventaError as error:
        report_error(describe(error))
        raise typer.Exit(exit_code(error)) from None
    except ValueError as error:  # the SDK's checks of the inputs, before any request (e.g. a file name)
        report_error(f"invalid_input: {error}")
        raise typer.Exit(EXIT_INVALID) from None


def exit_code(error: PostventaError) -> int:
    """The exit code of an SDK error (see EXIT_CODES)."""
    from postventa_sdk import (
        ApiError,
        Conflict,
        Forbidden,
        NotFound,
        PreconditionFailed,
        RateLimited,
        ServerError,
        TransportError,
        Unauthorized,
        UnexpectedResponse,
    )

    by_class: list[tuple[type[Exception] | tuple[type[Exception], ...], int]] = [
        (NotFound, EXIT_NOT_FOUND),
        ((Unauthorized, Forbidden), EXIT_NOT_ALLOWED),
        (Conflict, EXIT_CONFLICT),
        (PreconditionFailed, EXIT_PRECONDITION_FAILED),
        (RateLimited, EXIT_RATE_LIMITED),
        ((ServerError, UnexpectedResponse), EXIT_SERVER_ERROR),
        (TransportError, EXIT_NO_RESPONSE),
        (ApiError, EXIT_BAD_REQUEST),  # 400, 413-415, 422 and any other 4xx
    ]
    return next((code for kind, code in by_class if isinstance(error, kind)), EXIT_UNEXPECTED)


def describe(error: PostventaError) -> str:
    """One line for stderr: the stable code first, then the message, the status and the request id."""
    from postventa_sdk import ApiError, TransportError, UnexpectedResponse

    if isinstance(error, ApiError | UnexpectedResponse):
        code = error.code if isinstance(error, ApiError) else "unexpected_response"
        return f"{code}: {error.message} (HTTP {error.status}, request id {error.request_id or '-'})"
    if isinstance(error, TransportError):
        return f"no_response: {error}"
    return f"error: {error}"


# --- rendering ------------------------------------------------------------------------------------


def _sent_document(sent: SentMessage) -> dict[str, object]:
    return {
        "Id": sent.id,
        "OrderId": sent.order_id,
        "Location": sent.location,
        "MessageIgnored": sent.message_ignored,
        "Replayed": sent.replayed,
        "IdempotencyKey": sent.idempotency_key,
        "RequestId": sent.request_id,
    }


def conversation_view(found: Conversation) -> Table | Text:
    """A table of the messages, statuses coloured; the texts are shown as written (never as markup)."""
    pack = f" · pack {found.pack_id}" if found.pack_id is not None else ""
    if not found.messages:
        return Text(f"Order {found.order_id}{pack}: no messages yet.")
    table = Table(title=f"Order {found.order_id}{pack}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Id", "Date (UTC)", "From", "Reason", "Status", "Message"):
        table.add_column(column, overflow="fold")
    for message in found.messages:
        date = message.date_created.strftime("%Y-%m-%d %H:%M") if message.date_created else ""
        table.add_row(
            str(message.id),
            date,
            "seller" if message.direction == "outbound" else "buyer",
            message.reason.name if message.reason is not None else "",
            Text(message.status, style=STATUS_STYLES.get(message.status, "")),
            _message_text(message),
        )
    return table


def _message_text(message: Message) -> Text:
    shown = Text(message.text or "")
    if message.attachment is not None:
        shown.append(f"\nattached: {message.attachment.file_name} ({message.attachment.size} bytes)", "dim")
    problem = message.moderation_reason or message.error_code
    if problem:
        detail = f"{problem}: {message.error_message}" if message.error_message else problem
        shown.append(f"\n{detail}", STATUS_STYLES.get(message.status, "red"))
    return shown


def options_view(order_id: int, found: list[ReasonOption]) -> Table:
    """A table of the reasons: can each be sent now (yes, or the status a send would get), its kind of
    text, and if not, the code and message a send would get."""
    table = Table(title=f"Order {order_id}: what can be sent now", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Reason", no_wrap=True)
    table.add_column("Now", no_wrap=True)
    table.add_column("Why not", overflow="fold")
    for option in found:
        limit = f" ≤ {option.char_limit}" if option.char_limit else ""
        reason = Text(f"{option.reason.value} {option.reason.name}")
        reason.append(f"\n  {option.text_mode.replace('_', ' ')}{limit}", style="dim")
        if option.available:
            table.add_row(reason, Text("yes", style="green"), "")
            continue
        why = Text(option.code or "", style="red")
        if option.message:
            why.append(f"\n{option.message}", style="")
        table.add_row(reason, Text(str(option.status), style="red"), why)
    return table
