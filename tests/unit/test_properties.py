"""Properties of the pure rules (hypothesis): any order, any conversation, any text.

The HTTP side of the same properties is in tests/integration/test_properties.py.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from postventa.domain.conversation import Direction, PastMessage, conversation_refusal
from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.orders import ORDER_STATUS_LABELS, DeliveryWindow, LogisticType, OrderFacts
from postventa.domain.reasons import Reason, TextMode
from postventa.domain.sending import send_refusal, text_to_send
from postventa.domain.sites import Site
from postventa.domain.text import MAX_TEXT_CHARACTERS, normalize_free_text

RULES = settings(max_examples=400, deadline=None, database=None, derandomize=True)
NOW = dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.UTC)

_HOURS = st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda hours: hours[0] < hours[1])
WINDOWS = st.none() | st.builds(
    lambda days, hours: DeliveryWindow(NOW.date() + dt.timedelta(days=days), *hours),
    st.integers(-3, 3),
    _HOURS,
)
ORDERS = st.builds(
    OrderFacts,
    marketplace=st.sampled_from(["MercadoLibre", "mercadolibre ", "Tiendanube"]),
    site=st.none() | st.sampled_from(Site),
    status=st.sampled_from(list(ORDER_STATUS_LABELS)),
    logistic_type=st.none() | st.sampled_from(LogisticType),
    delivery_window=WINDOWS,
)
MESSAGES = st.one_of(
    st.builds(
        PastMessage,
        direction=st.just(Direction.OUTBOUND),
        reason=st.sampled_from(Reason),
        has_attachment=st.booleans(),
        failed=st.booleans(),
    ),
    st.just(PastMessage(Direction.INBOUND)),
)
HISTORIES = st.lists(MESSAGES, max_size=8)


def _code(refusal: object) -> str | None:
    return getattr(refusal, "code", None)


@RULES
@given(history=HISTORIES, reason=st.sampled_from(Reason), attachment=st.booleans())
def test_failed_messages_change_no_decision(history, reason, attachment):
    """A message whose delivery finally failed never reached the buyer: the rules ignore it."""
    delivered = [message for message in history if not message.failed]

    assert conversation_refusal(history, reason, has_attachment=attachment) == conversation_refusal(
        delivered, reason, has_attachment=attachment
    )


@RULES
@given(history=HISTORIES, reason=st.sampled_from(Reason), attachment=st.booleans())
def test_the_seller_waits_exactly_when_the_last_message_is_the_sellers(history, reason, attachment):
    counted = [message for message in history if not message.failed]
    waiting = bool(counted) and counted[-1].direction is Direction.OUTBOUND

    code = _code(conversation_refusal(history, reason, has_attachment=attachment))

    assert (code == "awaiting_buyer_reply") is waiting


@RULES
@given(history=HISTORIES, reason=st.sampled_from(Reason))
def test_an_attachment_never_lifts_a_refusal(history, reason):
    """What options predict (no attachment) only gets stricter with one, and only by its own rule."""
    plain = conversation_refusal(history, reason, has_attachment=False)
    attached = conversation_refusal(history, reason, has_attachment=True)

    if plain is not None:
        assert attached is not None
    if attached != plain:
        assert _code(attached) == "attachment_requires_answered_message"


@RULES
@given(order=ORDERS, history=HISTORIES, reason=st.sampled_from(Reason), attachment=st.booleans())
def test_an_order_that_cannot_take_the_reason_is_refused_whatever_the_conversation(
    order, history, reason, attachment
):
    """Check 8 (412) comes before check 9 (409): the conversation never hides a precondition."""
    refusal = send_refusal(order, history, reason, has_attachment=attachment, now=NOW)
    alone = send_refusal(order, [], reason, has_attachment=False, now=NOW)

    if alone is not None and alone.kind is RefusalKind.PRECONDITION:
        assert refusal == alone


@RULES
@given(order=ORDERS, reason=st.sampled_from(Reason), now=st.integers(-48, 48))
def test_a_template_reason_that_may_be_sent_has_its_text(order, reason, now):
    """Options preview and the send render the template whenever the rules allow the reason."""
    at = NOW + dt.timedelta(hours=now)
    if reason.rule.text_mode is not TextMode.TEMPLATE or send_refusal(
        order, [], reason, has_attachment=False, now=at
    ):
        return

    text = text_to_send(order, reason, None, at)

    assert text.strip()
    assert len(text) <= MAX_TEXT_CHARACTERS


def _spellings(reason: Reason) -> list[object]:
    number = int(reason)
    return [
        number,
        str(number),
        f" {number} ",
        f"0{number}",
        reason.name,
        reason.name.lower(),
        reason.name.title(),
    ]


@RULES
@given(
    st.sampled_from(Reason).flatmap(
        lambda reason: st.tuples(st.just(reason), st.sampled_from(_spellings(reason)))
    )
)
def test_every_spelling_of_a_reason_names_it(reason_and_spelling):
    reason, spelling = reason_and_spelling

    assert Reason.parse(spelling) is reason


def _names_a_reason(text: str) -> bool:
    bare = text.strip()
    return bare.upper() in Reason.__members__ or (bare.isascii() and bare.isdigit() and len(bare) <= 2)


@RULES
@given(
    st.one_of(
        st.integers().filter(lambda number: not 1 <= number <= 5),
        st.text().filter(lambda text: not _names_a_reason(text)),
        st.floats(),
        st.booleans(),
        st.none(),
    )
)
def test_anything_else_names_no_reason(raw):
    assert Reason.parse(raw) is None


# Any code point but NUL and lone surrogates (which no request can carry as UTF-8), with combining
# marks, emoji and whitespace made likely.
_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=400),
    st.lists(
        st.sampled_from(["a", " ", "\r\n", "\t", "\u0301", "e\u0301", "\u0958", "👍🏽", "\u3000", "\u2028"]),
        max_size=400,
    ).map("".join),
)


@settings(RULES, max_examples=600)
@given(raw=_TEXT)
def test_normalising_twice_changes_nothing(raw):
    """An accepted text is already in its final form: stored, read back and sent again alike."""
    try:
        text = normalize_free_text(raw)
    except PostventaError as error:
        refused = error.refusal.code
    else:
        refused = None
    assert refused in {None, "message_missing", "invalid_characters", "message_too_long"}
    if refused is not None:
        return

    assert normalize_free_text(text) == text
    assert unicodedata.is_normalized("NFC", text)
    assert len(text) <= MAX_TEXT_CHARACTERS
