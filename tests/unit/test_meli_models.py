"""What the Mercado Libre client reads from Mercado Libre's JSON: both shapes of a message, its
moderation in any case, the read time and the writing application, a conversation's status (and
whether an agent answers for the buyer), the caps, an order's site."""

from __future__ import annotations

import datetime as dt

import pytest

from postventa.meli.models import parse_caps, parse_conversation_status, parse_message, parse_order

CURRENT_SHAPE = {
    "id": "94353d192b9640e8b1ed3c77aa406f39",
    "site_id": "MLA",
    "client_id": 5112093284467491,
    "from": {"user_id": "415458330"},
    "to": {"user_id": 618491100},
    "status": "available",
    "text": "Hola",
    "message_date": {
        "received": "2026-11-28T10:00:00.000-04:00",
        "created": "2026-11-28T10:00:00.000-04:00",
        "read": "2026-11-28T11:30:00.000Z",
    },
    "message_moderation": {"status": "CLEAN", "reason": None},
    "message_resources": [{"id": "2000001", "name": "packs"}, {"id": "415458330", "name": "sellers"}],
}

FLAT_SHAPE = {
    "message_id": "3f6da1e35ac84f70a24af7360d24c7bc",
    "date_received": "2026-11-28T10:00:00Z",
    "date": "2026-11-28T10:00:00Z",
    "date_read": "2026-11-28T12:00:00Z",
    "from": {"user_id": 618491100},
    "to": {"user_id": 415458330},
    "text": {"plain": "¿Cuándo llega?"},
    "site_id": "MLA",
    "resource": "orders",
    "resource_id": 2000000123,
    "status": "available",
    "moderation": {"status": "pending", "date_moderated": None, "source": "online"},
}


def test_the_current_shape_is_read_whole() -> None:
    message = parse_message(CURRENT_SHAPE)
    assert message.id == "94353d192b9640e8b1ed3c77aa406f39"
    assert (message.from_user_id, message.to_user_id) == (415458330, 618491100)
    assert message.pack_id == 2000001
    assert message.moderation_status == "clean"
    assert message.client_id == "5112093284467491"
    assert message.created_at == dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.UTC)
    assert message.read_at == dt.datetime(2026, 11, 28, 11, 30, tzinfo=dt.UTC)
    assert not message.is_moderated
    assert not message.is_pending_moderation


def test_the_flat_shape_of_a_message_read_by_id_is_read_whole() -> None:
    message = parse_message(FLAT_SHAPE)
    assert message.id == "3f6da1e35ac84f70a24af7360d24c7bc"
    assert message.text == "¿Cuándo llega?"
    assert message.pack_id == 2000000123  # resource/resource_id: the order of an order without pack
    assert message.created_at == dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
    assert message.read_at == dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    assert message.moderation_status == "pending"
    assert message.is_pending_moderation
    assert message.client_id is None


@pytest.mark.parametrize(
    ("status", "moderation", "pending", "moderated"),
    [
        ("available", "clean", False, False),
        ("available", "PENDING", True, False),
        ("IN_MODERATION", "NON_MODERATED", True, False),
        ("pending", None, True, False),
        ("moderated", "rejected", False, True),
        ("available", "Rejected", False, True),
        ("available", "non_moderated", False, False),
    ],
)
def test_moderation_is_read_whatever_its_case(
    status: str, moderation: str | None, pending: bool, moderated: bool
) -> None:
    message = parse_message({"id": "x", "status": status, "message_moderation": {"status": moderation}})
    assert message.moderation_status == (moderation.lower() if moderation else None)
    assert message.is_pending_moderation is pending
    assert message.is_moderated is moderated


def test_an_agent_conversation_is_told_by_its_path() -> None:
    agent = parse_conversation_status(
        {
            "path": "/packs/2000001/sellers/415458330/conversations/agent",
            "status": "ACTIVE",
            "substatus": None,
        }
    )
    plain = parse_conversation_status({"path": "/packs/2000001/sellers/415458330", "status": "active"})
    blocked = parse_conversation_status({"status": "blocked", "substatus": "blocked_by_time"})
    assert (agent.is_agent, agent.conversation_type, agent.status) == (True, "agent", "active")
    assert (plain.is_agent, plain.conversation_type) == (False, None)
    assert blocked.is_blocked
    assert blocked.substatus == "blocked_by_time"
    assert parse_conversation_status(None).status is None


def test_caps_are_read_from_a_bare_array_leniently() -> None:
    caps = parse_caps(
        [
            {"option_id": "REQUEST_VARIANTS", "cap_available": 1},
            {"option_id": "other", "cap_available": "0"},
            {"option_id": "DELIVERY_PROMISE", "cap_available": -2},
            {"cap_available": 3},
            "junk",
        ]
    )
    assert caps == {"REQUEST_VARIANTS": 1, "OTHER": 0, "DELIVERY_PROMISE": 0}
    assert parse_caps({"items": [{"option_id": "OTHER", "cap_available": 2}]}) == {"OTHER": 2}


def test_an_order_keeps_its_site() -> None:
    assert parse_order({"id": 1, "context": {"site": "MCO"}}).site_id == "MCO"
    assert parse_order({"id": 1, "site_id": "MLB"}).site_id == "MLB"
