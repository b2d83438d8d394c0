"""Properties of the send over HTTP, for any order and any request (hypothesis, in process).

1. The options endpoint predicts the send. For an order of any kind (marketplace, site, logistic
   type, status, delivery window or none) with any conversation so far, and a send of any reason
   (valid, invalid or missing), any text and any attachment, from any source, the send answers what
   `GET …/messages/options` said for that reason just before, within what options claims to know.
2. The text limit holds for any Unicode over HTTP: 200 exactly when the domain accepts the text,
   otherwise 400 with the domain's code, never a 5xx, and an accepted text reads back as normalised.

The application's clock is fixed (FIXED_NOW), so delivery windows are past or not by construction.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from postventa.config import Settings
from postventa.domain.attachments import Attachment
from postventa.domain.conversation import Direction
from postventa.domain.errors import PostventaError
from postventa.domain.orders import ORDER_STATUS_LABELS, LogisticType
from postventa.domain.reasons import Reason, TextMode
from postventa.domain.sites import Site
from postventa.domain.text import normalize_free_text
from postventa.store import messages as message_store
from postventa.store.engine import Database
from postventa.store.orders import get_order
from postventa.wiring import create_app
from tests.factories import Tenant, make_order, make_tenant
from tests.integration.http_helpers import PDF, assert_accepted, assert_refused, messages_url

FIXED_NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)  # 15:30 in Buenos Aires, 12:30 in Mexico
PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,  # the seed-derived examples only: the same run everywhere
    derandomize=True,
    # One client and one tenant serve every example; each example makes its own order.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_external_ids = itertools.count(1)


@pytest.fixture
async def fixed_client(settings: Settings, database: Database) -> AsyncIterator[httpx2.AsyncClient]:
    """The application with its clock stopped at FIXED_NOW, over in-process HTTP."""
    app = create_app(settings, database=database, clock=lambda: FIXED_NOW)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://postventa.test") as http:
        yield http


@pytest.fixture
async def tenant(database: Database) -> Tenant:
    return await make_tenant(database)


# --- orders and their conversations -----------------------------------------------------------


def _delivery_window(site: str | None, days: int, from_hour: int, to_hour: int) -> dict[str, Any]:
    zone = ZoneInfo(Site(site).time_zone) if site else dt.UTC
    day = FIXED_NOW.astimezone(zone).date() + dt.timedelta(days=days)
    return {"Date": day.isoformat(), "FromHour": from_hour, "ToHour": to_hour}


_HOURS = st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda hours: hours[0] < hours[1])


_MESSAGEABLE = {  # half the orders are drawn from these, so that sends get past the preconditions
    "Marketplace": st.just("MercadoLibre"),
    "Status": st.sampled_from([10, 20, 80]),
    "LogisticType": st.sampled_from([int(LogisticType.CROSS_DOCKING), int(LogisticType.FLEX), None]),
    "window_days": st.integers(0, 2),
}
_ANY_KIND = {
    "Marketplace": st.sampled_from(["MercadoLibre", "MercadoLibre", "Tiendanube"]),
    "Status": st.sampled_from(list(ORDER_STATUS_LABELS)),
    "LogisticType": st.none() | st.sampled_from([int(kind) for kind in LogisticType]),
    "window_days": st.integers(-2, 3),
}


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    """An OrderIn of any kind the rules tell apart (half of them likely to take a message)."""
    kind = draw(st.sampled_from([_MESSAGEABLE, _ANY_KIND]))
    marketplace = draw(kind["Marketplace"])
    sites = [site.value for site in Site]
    site = draw(
        st.sampled_from(sites) if marketplace == "MercadoLibre" else st.none() | st.sampled_from(sites)
    )
    order: dict[str, Any] = {
        "ExternalOrderId": f"PROP-{next(_external_ids)}",
        "Marketplace": marketplace,
        "SiteId": site,
        "Status": draw(kind["Status"]),
        "LogisticType": draw(kind["LogisticType"]),
    }
    if draw(st.booleans()):
        from_hour, to_hour = draw(_HOURS)
        order["EstimatedDelivery"] = _delivery_window(site, draw(kind["window_days"]), from_hour, to_hour)
    return order


@dataclass(frozen=True)
class PastStep:
    """A message already in the conversation: the seller's (reason, attachment, status) or the buyer's."""

    seller: bool
    reason: Reason = Reason.OTHER
    attachment: bool = False
    status: str = "sent"


_STEPS = st.lists(
    st.one_of(
        st.builds(
            PastStep,
            seller=st.just(True),
            reason=st.sampled_from(Reason),
            attachment=st.booleans(),
            status=st.sampled_from(["queued", "sent", "moderated", "failed"]),
        ),
        st.just(PastStep(seller=False)),
    ),
    max_size=4,
)


async def _write_history(database: Database, tenant: Tenant, order_id: int, steps: list[PastStep]) -> None:
    """Messages written straight to the store: any history, even one no send could have made."""
    if not steps:
        return
    async with database.transaction(write=True) as connection:
        order = await get_order(connection, tenant.account_id, order_id)
        assert order is not None
        count = await message_store.lock_conversation(connection, order.conversation_id)
        for step in steps:
            attachment_id = None
            if step.seller and step.attachment:
                attachment = Attachment(name="factura", extension="pdf", content=PDF)
                attachment_id = await message_store.insert_attachment(
                    connection, tenant.account_id, attachment, FIXED_NOW
                )
            message = message_store.NewMessage(
                account_id=tenant.account_id,
                conversation_id=order.conversation_id,
                order_id=order_id,
                direction=Direction.OUTBOUND if step.seller else Direction.INBOUND,
                reason=step.reason if step.seller else None,
                text="Hola" if step.seller else "Gracias",
                status=step.status if step.seller else "received",
                attachment_id=attachment_id,
            )
            await message_store.append_message(connection, message, count, FIXED_NOW)
            count += 1


# --- requests ---------------------------------------------------------------------------------

_MISSING = object()


@dataclass(frozen=True)
class SendRequest:
    """What a send carries, and the one parameter error it has by construction (check 7), if any."""

    reason: object  # the messageOptions value, or _MISSING
    intended: Reason | None  # the reason it names; None when missing or invalid
    text: str | None
    text_kind: str  # "ok", "missing" or "too_long"
    attachment: str  # "none", "pdf", "bad_base64" or "bad_extension"
    source: str  # "query", "form" or "json"

    def parameter_error(self) -> str | None:
        """The 400 the send must get: reason, then text (free-text reasons), then attachment."""
        if self.reason is _MISSING or self.reason == "":
            return "reason_missing"
        if self.intended is None:
            return "reason_invalid"
        if self.intended.rule.text_mode is TextMode.FREE_TEXT and self.text_kind != "ok":
            return "message_missing" if self.text_kind == "missing" else "message_too_long"
        return {
            "bad_base64": "attachment_base64_invalid",
            "bad_extension": "attachment_extension_not_allowed",
        }.get(self.attachment)


_VALID_REASONS = st.sampled_from([*Reason, Reason.OTHER, Reason.OTHER]).flatmap(
    lambda reason: st.tuples(
        st.sampled_from(
            [int(reason), str(int(reason)), reason.name, reason.name.lower(), f" {reason.name.title()} "]
        ),
        st.just(reason),
    )
)
_INVALID_REASONS = st.tuples(st.sampled_from([0, 6, -1, 12, "7", "x", "OTHERS", "4a", 2.5, True]), st.none())
_ABSENT_REASONS = st.tuples(st.sampled_from([_MISSING, ""]), st.none())
_TEXTS = st.one_of(
    st.tuples(st.just("Hola, ¿cómo estás?"), st.just("ok")),
    st.tuples(
        st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=60).filter(
            lambda text: text.strip()
        ),
        st.just("ok"),
    ),
    st.tuples(st.sampled_from(["a" * 350, " " + "é" * 350 + "\n"]), st.just("ok")),
    st.tuples(st.sampled_from([None, "", "   ", "\n\t"]), st.just("missing")),
    st.tuples(st.sampled_from(["a" * 351, "ü" * 400]), st.just("too_long")),
)


@st.composite
def send_requests(draw: st.DrawFn) -> SendRequest:
    """Any send: a reason valid (in any spelling), invalid or missing; any text; any attachment."""
    reason, intended = draw(
        st.sampled_from([_VALID_REASONS] * 4 + [_INVALID_REASONS, _ABSENT_REASONS]).flatmap(
            lambda strategy: strategy
        )
    )
    text, text_kind = draw(_TEXTS)
    attachment = draw(st.sampled_from(["none"] * 3 + ["pdf"] * 2 + ["bad_base64", "bad_extension"]))
    source = "json" if attachment != "none" else draw(st.sampled_from(["query", "form", "json"]))
    return SendRequest(reason, intended, text, text_kind, attachment, source)


def _parameters(request: SendRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if request.reason is not _MISSING:
        fields["messageOptions"] = request.reason
    if request.text is not None:
        fields["message"] = request.text
    if request.attachment != "none":
        fields["fileBase64"] = "***" if request.attachment == "bad_base64" else base64.b64encode(PDF).decode()
        fields["documentName"] = "factura"
        fields["documentExtension"] = "exe" if request.attachment == "bad_extension" else "pdf"
    return fields


async def _send(client: httpx2.AsyncClient, tenant: Tenant, order_id: int, request: SendRequest):
    fields = tenant.credentials(**_parameters(request))
    url = messages_url(order_id)
    if request.source == "json":
        return await client.post(url, json=fields)
    as_text = {name: str(value) for name, value in fields.items()}
    if request.source == "form":
        return await client.post(url, data=as_text)
    return await client.post(url, params=as_text)


# --- 1. options predict the send ---------------------------------------------------------------


@PROPERTY_SETTINGS
@given(order=orders(), history=_STEPS, request=send_requests())
async def test_the_send_answers_what_options_predicted(
    fixed_client, database, tenant, order: dict[str, Any], history: list[PastStep], request: SendRequest
) -> None:
    """What is compared, on a fresh order per example, options read just before the send:

    * a request with a parameter error (reason missing or invalid; for the free-text reasons 3
      and 4, text missing, blank or over 350 characters; an invalid attachment) gets 400 with that
      error's code, whatever options said: parameters are check 7, options cannot know them, and
      they come before the order's preconditions (8) and the conversation (9);
    * a valid request without attachment gets exactly the predicted Status and Code (200 and no
      code when Available), and a template reason's 200 sends exactly the predicted Template;
    * a valid request with an attachment gets the predicted 412 or 409 awaiting_buyer_reply as
      predicted; where options (which assumes no attachment) predicted 200 or a later conversation
      rule, the send gets that or 409 attachment_requires_answered_message, the one rule about
      attachments.
    """
    order_id = await make_order(database, tenant, **order)
    await _write_history(database, tenant, order_id, history)
    options = await fixed_client.get(f"{messages_url(order_id)}/options", params=tenant.credentials())
    assert options.status_code == 200, options.text
    predicted_by_reason = {result["Reason"]["Key"]: result for result in options.json()["Results"]}

    response = await _send(fixed_client, tenant, order_id, request)

    error = request.parameter_error()
    if error is not None:
        assert_refused(response, 400, error)
        return
    assert request.intended is not None
    predicted = predicted_by_reason[int(request.intended)]
    expected = (predicted["Status"], predicted["Code"])
    assert predicted["Available"] is (expected == (200, None))
    body = response.json()
    answered = (response.status_code, None if response.status_code == 200 else body["Code"])
    if request.attachment == "pdf" and expected[0] != 412 and expected[1] != "awaiting_buyer_reply":
        assert answered in {expected, (409, "attachment_requires_answered_message")}, (predicted, body)
    else:
        assert answered == expected, (predicted, body)
    if answered[0] == 200 and predicted["Template"] is not None:
        message = await fixed_client.get(f"{messages_url(order_id)}/{body}", params=tenant.credentials())
        assert message.json()["Text"] == predicted["Template"]


# --- 2. the text limit over HTTP ---------------------------------------------------------------

# Any code point UTF-8 can carry (no lone surrogates), NUL excluded; combining marks, emoji,
# whitespace and controls are all in; long texts to cross the limit.
_CHARACTER = st.characters(codec="utf-8", exclude_characters="\x00")
_PRINTABLE = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])
_PIECES = ["a", " ", "\n", "\r\n", "\t", "e\u0301", "\u0958", "👍🏽", "\u3000", "\u200b", "🇦🇷", "\u0301"]
_ANY_TEXT = st.one_of(
    st.text(_CHARACTER, max_size=60),
    st.text(_PRINTABLE, min_size=330, max_size=370),  # around the limit, where counting matters
    st.lists(st.sampled_from(_PIECES), min_size=200, max_size=320).map("".join),  # 270-430 once folded
    st.text(_CHARACTER, min_size=330, max_size=420),
)


@hypothesis_settings(PROPERTY_SETTINGS, max_examples=100)
@given(text=_ANY_TEXT, source=st.sampled_from(["json", "query", "form"]))
async def test_any_text_is_sent_exactly_when_the_domain_accepts_it(
    client, database, tenant, text: str, source: str
) -> None:
    """OTHER with any text: 200 and the text stored as normalised, or 400 with the domain's code."""
    try:
        expected: str | None = normalize_free_text(text)
    except PostventaError as refused:
        expected, code = None, refused.refusal.code
    order_id = await make_order(database, tenant)
    request = SendRequest(4, Reason.OTHER, text, "ok", "none", source)

    response = await _send(client, tenant, order_id, request)

    assert response.status_code < 500, response.text
    if expected is None:
        assert_refused(response, 400, code)
        return
    message_id = assert_accepted(response)
    stored = await client.get(f"{messages_url(order_id)}/{message_id}", params=tenant.credentials())
    assert stored.json()["Text"] == expected
