"""What postventa's Mercado Libre client (src/postventa/meli/client.py) and its delivery rules
(src/postventa/domain/delivery.py `_RULES`) depend on, one endpoint, status and error body a test.

Every test talks HTTP (httpx2) to the target of `conftest.py`: the emulator over a real socket, or
Mercado Libre itself with `POSTVENTA_MELI_LIVE_TEST=1`, where the tests that need the emulator's
control API (or would change a real conversation) are skipped. Error answers are checked the way
the client reads them: the status, and the words of message, error, code and cause that
`classify_response` matches; the emulator's exact bodies are checked where Mercado Libre documents
them.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx2
import pytest

from postventa.domain.delivery import DeliveryFailure, FailureKind, classify_response
from tests.contract.conftest import POST_SALE, Control, Target
from tests.servers import free_port

MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
LOGISTIC_TYPES = {
    "drop_off",
    "xd_drop_off",
    "cross_docking",
    "self_service",
    "fulfillment",
    "default",
    "custom",
    "not_specified",
}
UNKNOWN_MESSAGE_ID = "0" * 32


def classify(answer: httpx2.Response) -> DeliveryFailure:
    """The failure the client makes of an error answer (its message, error, code and cause, joined)."""
    body = answer.json()
    words = [body.get(key) for key in ("message", "error", "code", "cause")] if isinstance(body, dict) else []
    return classify_response(answer.status_code, " ".join(str(word) for word in words if word))


def conversation_path(target: Target, pack_id: int | None = None) -> str:
    return f"/messages/packs/{pack_id or target.pack_id}/sellers/{target.seller_id}"


def send(target: Target, pack_id: int, buyer_id: int, text: str, **extra: Any) -> httpx2.Response:
    body = {
        "from": {"user_id": str(target.seller_id)},
        "to": {"user_id": str(buyer_id)},
        "text": text,
        **extra,
    }
    return target.http.post(
        conversation_path(target, pack_id), params=POST_SALE, json=body, headers=target.headers
    )


def option(target: Target, pack_id: int, body: dict[str, Any]) -> httpx2.Response:
    return target.http.post(
        f"/messages/action_guide/packs/{pack_id}/option", params=POST_SALE, json=body, headers=target.headers
    )


def read_conversation(target: Target, **params: str) -> httpx2.Response:
    query = {**POST_SALE, "mark_as_read": "false", **params}
    return target.http.get(conversation_path(target), params=query, headers=target.headers)


def first_message_id(target: Target) -> str:
    messages = read_conversation(target, limit="1").json()["messages"]
    if not messages:
        pytest.skip("the pack has no message to read")
    return str(messages[0]["id"])


def assert_message(message: dict[str, Any]) -> None:
    """The fields `parse_message` reads from a message of the current shape."""
    assert MESSAGE_ID.fullmatch(message["id"])
    assert isinstance(message["from"]["user_id"], int)
    assert isinstance(message["to"]["user_id"], int)
    assert message["status"] in ("available", "moderated", "rejected", "pending_translation")
    assert isinstance(message["text"], str)
    assert message["message_moderation"]["status"] in ("clean", "rejected", "pending", "non_moderated")
    assert message["message_date"]["created"]
    assert {"packs", "sellers"} <= {resource["name"] for resource in message["message_resources"]}


@pytest.fixture
def fresh_pack(target: Target, control_or_none: Control | None) -> int:
    """A pack nobody wrote to in the emulator; the given pack live."""
    if control_or_none is None:
        return target.pack_id
    return control_or_none.conversation().pack_id


@pytest.fixture
def guide_pack(target: Target, fresh_pack: int) -> int:
    """A pack whose action guide is open; live, the test is skipped when the given pack's is not."""
    if target.live:
        caps = target.http.get(
            f"/messages/action_guide/packs/{fresh_pack}/caps_available",
            params=POST_SALE,
            headers=target.headers,
        )
        if caps.status_code != 200 or not any(cap.get("cap_available") for cap in caps.json()):
            pytest.skip(f"the action guide of pack {fresh_pack} is closed (caps: {caps.status_code})")
    return fresh_pack


@pytest.fixture
def control_or_none(target: Target, request: pytest.FixtureRequest) -> Control | None:
    """The control API in emulator mode, None live (for tests that run in both)."""
    if target.live:
        return None
    control: Control = request.getfixturevalue("control")
    return control


# --- OAuth ------------------------------------------------------------------------------------


def test_refresh_answers_the_next_tokens(target: Target) -> None:
    """`MeliClient.refresh`: access_token, refresh_token, expires_in, user_id."""
    grant = target.grant
    for name in ("access_token", "refresh_token"):
        assert isinstance(grant[name], str)
        assert grant[name]
    assert isinstance(grant["expires_in"], int)
    assert grant["expires_in"] > 0
    assert grant["user_id"] == target.seller_id
    assert str(grant["token_type"]).lower() == "bearer"


def test_refused_refresh_token_is_invalid_grant(target: Target) -> None:
    """A spent or revoked refresh token: 400 `invalid_grant`, which puts the link in needs_relink."""
    refused = target.refresh(f"TG-{'0' * 24}-{target.seller_id}")
    assert refused.status_code == 400
    body = refused.json()
    assert (body["error"], body["status"]) == ("invalid_grant", 400)
    assert classify(refused).kind is FailureKind.RELINK


def test_revoked_authorization_is_invalid_grant(control: Control, target: Target) -> None:
    """The seller revoked the app: the refresh token it had is refused like a spent one."""
    other = control.http.post("/_emulator/sellers", json={"SiteId": "MLA"}).json()
    assert control.http.post(f"/_emulator/sellers/{other['SellerId']}/revoke").status_code == 200
    form = {
        "grant_type": "refresh_token",
        "client_id": other["ClientId"],
        "client_secret": other["ClientSecret"],
        "refresh_token": other["RefreshToken"],
    }
    refused = target.http.post("/oauth/token", data=form)
    assert refused.json()["error"] == "invalid_grant"
    assert classify(refused).kind is FailureKind.RELINK


# --- the seller, orders, shipments ---------------------------------------------------------------


def test_users_me(target: Target) -> None:
    """`MeliClient.me`: the token's seller."""
    me = target.http.get("/users/me", headers=target.headers)
    assert me.status_code == 200
    assert me.json()["id"] == target.seller_id


def test_orders_search_pages(target: Target) -> None:
    """`MeliClient.search_orders`: `results` and `paging.total`, paged by offset and limit."""
    params = {"seller": str(target.seller_id), "offset": "0", "limit": "50"}
    found = target.http.get("/orders/search", params=params, headers=target.headers)
    assert found.status_code == 200
    body = found.json()
    assert isinstance(body["results"], list)
    assert body["paging"]["total"] >= len(body["results"]) >= 1
    assert all(isinstance(order["id"], int) for order in body["results"])
    if not target.live:
        assert target.order_id in [order["id"] for order in body["results"]]


def test_order_by_id(target: Target) -> None:
    """`MeliClient.order` (`parse_order`): id, pack_id, status, context.site, seller, buyer, shipping.id."""
    order = target.http.get(f"/orders/{target.order_id}", headers=target.headers)
    assert order.status_code == 200
    body = order.json()
    assert body["id"] == target.order_id
    assert "pack_id" in body
    assert isinstance(body["status"], str)
    assert body["context"]["site"] == target.site_id
    assert body["seller"]["id"] == target.seller_id
    assert isinstance(body["buyer"]["id"], int)
    assert isinstance(body["shipping"]["id"], int)


def test_shipment_in_the_new_format(target: Target) -> None:
    """`MeliClient.shipment` with `x-format-new: true`: logistic.type, status, lead_time."""
    shipment = target.http.get(
        f"/shipments/{target.shipment_id}", headers={**target.headers, "x-format-new": "true"}
    )
    assert shipment.status_code == 200
    body = shipment.json()
    assert body["id"] == target.shipment_id
    assert body["logistic"]["type"] in LOGISTIC_TYPES
    assert isinstance(body["status"], str)
    assert "estimated_delivery_time" in body["lead_time"]


# --- conversations and messages ----------------------------------------------------------------


def test_conversation_read_pages_with_status(target: Target) -> None:
    """`MeliClient.conversation`: `messages`, `paging.total`, `conversation_status`, without marking read."""
    first = read_conversation(target, limit="1", offset="0")
    assert first.status_code == 200
    body = first.json()
    assert body["paging"]["limit"] == 1
    assert body["paging"]["offset"] == 0
    total = body["paging"]["total"]
    assert len(body["messages"]) == min(1, total)
    assert body["conversation_status"]["status"] in ("active", "blocked")
    assert "substatus" in body["conversation_status"]
    for message in body["messages"]:
        assert_message(message)
    beyond = read_conversation(target, limit="1", offset=str(total)).json()
    assert beyond["messages"] == []
    assert beyond["paging"]["total"] == total
    if not target.live:
        assert total == 2


def test_send_answers_201_with_the_message(control: Control, target: Target) -> None:
    """`MeliClient.send_message` after the buyer wrote: 201 and the message."""
    conversation = control.conversation(buyer_writes=True)
    sent = send(target, conversation.pack_id, conversation.buyer_id, "¡Hola! Ya lo despachamos.")
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert_message(message)
    assert message["from"]["user_id"] == target.seller_id
    assert message["to"]["user_id"] == conversation.buyer_id


def test_send_to_a_blocked_conversation_is_403(control: Control, target: Target) -> None:
    """A cancelled order blocks messaging: 403 `blocked_conversation_send_message_forbidden`."""
    conversation = control.conversation(status="cancelled", buyer_writes=True)
    refused = send(target, conversation.pack_id, conversation.buyer_id, "Hola")
    assert refused.status_code == 403
    body = refused.json()
    assert (body["status_code"], body["code"]) == (403, "forbidden")
    assert body["message"] == "blocked_conversation_send_message_forbidden"
    assert classify(refused).code == "conversation_blocked"


def test_send_too_long_is_400(target: Target) -> None:
    """Over 350 characters: 400 "too long" (`message_too_long`)."""
    refused = send(target, target.pack_id, target.buyer_id, "x" * 351)
    assert refused.status_code == 400
    assert refused.json()["message"] == "The message content is too long, max characters allowed are 350"
    assert classify(refused).code == "message_too_long"


def test_send_with_unsupported_characters_is_400(control: Control, target: Target) -> None:
    """Outside ISO-8859-1 and emoji: 400 "not supported" (`unsupported_characters`). Emulator only: live,
    a text Mercado Libre took would reach a real buyer."""
    refused = send(target, target.pack_id, target.buyer_id, "Precio: 10 €")
    assert refused.status_code == 400
    assert refused.json()["message"] == "The text has character/s that is/are not supported."
    assert classify(refused).code == "unsupported_characters"


def test_unknown_attachment_on_send_is_422(control: Control, target: Target) -> None:
    """An attachment id Mercado Libre no longer has: 422 (`attachment_expired`)."""
    refused = send(
        target, target.pack_id, target.buyer_id, "Adjunto", attachments=[f"{target.seller_id}_x.pdf"]
    )
    assert refused.status_code == 422
    assert refused.json()["message"] == "Attachment key is invalid or not found"
    assert classify(refused).code == "attachment_expired"


def test_message_by_id_new_shape(target: Target) -> None:
    """`MeliClient.message` with `x-format-new: true`: `{"messages": [message]}`."""
    message_id = first_message_id(target)
    found = target.http.get(
        f"/messages/{message_id}", params=POST_SALE, headers={**target.headers, "x-format-new": "true"}
    )
    assert found.status_code == 200
    [message] = found.json()["messages"]
    assert message["id"] == message_id
    assert_message(message)


def test_message_by_id_old_shape(target: Target) -> None:
    """Without the header, the old flat shape `parse_message` also reads: message_id, text.plain."""
    message_id = first_message_id(target)
    found = target.http.get(f"/messages/{message_id}", params=POST_SALE, headers=target.headers)
    assert found.status_code == 200
    body = found.json()
    assert body["message_id"] == message_id
    assert isinstance(body["text"]["plain"], str)
    assert isinstance(body["from"]["user_id"], int)


def test_unknown_message_is_404(target: Target) -> None:
    """A message id that is not stored: 404."""
    missing = target.http.get(f"/messages/{UNKNOWN_MESSAGE_ID}", params=POST_SALE, headers=target.headers)
    assert missing.status_code == 404
    if not target.live:
        assert missing.json()["message"] == (
            f"The message with id: {UNKNOWN_MESSAGE_ID} could not be retrieved from storage"
        )


def test_attachment_upload_and_download(control: Control, target: Target) -> None:
    """`MeliClient.upload_attachment`: multipart `file` → `{"id"}`; the id downloads the same bytes."""
    params = {**POST_SALE, "site_id": target.site_id}
    uploaded = target.http.post(
        "/messages/attachments",
        params=params,
        files={"file": ("factura.pdf", b"%PDF-1.4 contract", "application/pdf")},
        headers=target.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    attachment_id = uploaded.json()["id"]
    assert attachment_id.startswith(f"{target.seller_id}_")
    downloaded = target.http.get(
        f"/messages/attachments/{attachment_id}", params=params, headers=target.headers
    )
    assert downloaded.status_code == 200
    assert downloaded.content == b"%PDF-1.4 contract"


# --- the action guide --------------------------------------------------------------------------


def test_option_sends_the_first_message(control: Control, target: Target) -> None:
    """`MeliClient.send_action_guide_option`: 200 and the message it sent."""
    conversation = control.conversation()
    sent = option(target, conversation.pack_id, {"option_id": "OTHER", "text": "Hola, ¿qué talle querés?"})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert MESSAGE_ID.fullmatch(body["id"])
    assert body["to"]["user_id"] == conversation.buyer_id
    assert body["status"] in ("available", "moderated")
    assert body["message_moderation"]["status"] in ("clean", "rejected", "pending")


def test_option_with_its_cap_used_is_403(control: Control, target: Target) -> None:
    """The cap is used up until the buyer answers: 403 (`reason_cap_exhausted`)."""
    pack_id = control.conversation().pack_id
    assert option(target, pack_id, {"option_id": "OTHER", "text": "Hola"}).status_code == 200
    refused = option(target, pack_id, {"option_id": "OTHER", "text": "¿Hola?"})
    assert refused.status_code == 403
    assert refused.json()["message"] == "You are not allowed to execute the option OTHER again"
    assert classify(refused).code == "reason_cap_exhausted"


def test_unknown_option_is_404(target: Target, guide_pack: int) -> None:
    """An option the pack does not offer: 404 (`reason_not_available`)."""
    refused = option(target, guide_pack, {"option_id": "NOT_AN_OPTION", "text": "Hola"})
    assert refused.status_code == 404
    assert refused.json()["message"] == "The option selected is not valid"
    assert classify(refused).code == "reason_not_available"


def test_wrong_template_is_400(target: Target, guide_pack: int) -> None:
    """A template id the option does not have: 400 (`template_invalid`)."""
    template = "TEMPLATE___REQUEST_BILLING_INFO___9"
    refused = option(target, guide_pack, {"option_id": "REQUEST_BILLING_INFO", "template_id": template})
    assert refused.status_code == 400
    assert refused.json()["message"] == f"The template {template} is invalid"
    assert classify(refused).code == "template_invalid"


def test_option_on_a_blocked_conversation_is_403(control: Control, target: Target) -> None:
    """A cancelled order: the guide answers 403 "blocked" (`conversation_blocked`)."""
    pack_id = control.conversation(status="cancelled").pack_id
    refused = option(target, pack_id, {"option_id": "OTHER", "text": "Hola"})
    assert refused.status_code == 403
    body = refused.json()
    assert set(body) == {"cause", "error", "message", "status_code"}
    assert classify(refused).kind is FailureKind.PERMANENT
    assert "blocked" in classify(refused).code


def test_caps_available_is_a_bare_array(target: Target, fresh_pack: int) -> None:
    """`GET .../caps_available`: `[{"option_id", "cap_available"}]`, not an object."""
    caps = target.http.get(
        f"/messages/action_guide/packs/{fresh_pack}/caps_available", params=POST_SALE, headers=target.headers
    )
    assert caps.status_code == 200
    body = caps.json()
    assert isinstance(body, list)
    assert body
    assert all(set(cap) >= {"option_id", "cap_available"} for cap in body)
    assert all(isinstance(cap["cap_available"], int) for cap in body)
    if not target.live:
        assert {cap["option_id"]: cap["cap_available"] for cap in body}["OTHER"] == 1


@pytest.mark.parametrize(
    ("kind", "code", "failure"),
    [
        ("409", "marketplace_locked", FailureKind.TRANSIENT),
        ("451", "buyer_account_deactivated", FailureKind.PERMANENT),
    ],
)
def test_lock_and_deactivated_buyer(
    control: Control, target: Target, kind: str, code: str, failure: FailureKind
) -> None:
    """The guide's 409 lock (retried) and 451 deactivated account (given up), as its error table has them."""
    pack_id = control.conversation().pack_id
    control.faults({"Route": "POST /messages/action_guide/*", "Kind": kind})
    refused = option(target, pack_id, {"option_id": "OTHER", "text": "Hola"})
    assert refused.status_code == int(kind)
    assert set(refused.json()) == {"cause", "error", "message", "status_code"}
    assert (classify(refused).code, classify(refused).kind) == (code, failure)


# --- notifications ----------------------------------------------------------------------------


def test_missed_feeds_list_undelivered_notifications(target: Target, control_or_none: Control | None) -> None:
    """`MeliClient.missed_feeds`: `{"messages": [notification]}`, each with topic, resource, user_id."""
    expected = None
    if control_or_none is not None:
        control_or_none.configure(NotifyUrl=f"http://127.0.0.1:{free_port()}/notify")
        expected = f"/orders/{control_or_none.conversation().order_id}"
    params = {"app_id": target.client_id}
    deadline = time.monotonic() + 10
    while True:
        answer = target.http.get("/missed_feeds", params=params, headers=target.headers)
        assert answer.status_code == 200, answer.text
        feeds = answer.json()["messages"]
        if (
            expected is None
            or expected in [feed["resource"] for feed in feeds]
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    assert isinstance(feeds, list)
    for feed in feeds:
        assert isinstance(feed["topic"], str)
        assert isinstance(feed["resource"], str)
        assert isinstance(feed["user_id"], int)
    if expected is not None:
        assert expected in [feed["resource"] for feed in feeds]


# --- errors every call can meet ------------------------------------------------------------------


def test_over_the_rate_limit_is_429(control: Control, target: Target) -> None:
    """Over the application's budget for an endpoint: 429, no Retry-After (`marketplace_rate_limited`)."""
    control.configure(ReadsPerMinute=1)
    statuses = [target.http.get("/users/me", headers=target.headers) for _ in range(2)]
    refused = statuses[-1]
    assert refused.status_code == 429
    assert refused.json() == {
        "message": "too many requests",
        "error": "too_many_requests",
        "status": 429,
        "cause": [],
    }
    assert "retry-after" not in refused.headers
    assert classify(refused).code == "marketplace_rate_limited"


def test_invalid_access_token_is_401(target: Target) -> None:
    """An access token Mercado Libre does not know: 401 (`marketplace_unauthorized`: refresh, try again)."""
    refused = target.http.get("/users/me", headers={"Authorization": "Bearer APP_USR-0-000000-0-0"})
    assert refused.status_code == 401
    assert classify(refused).kind is FailureKind.AUTH
    if not target.live:
        assert refused.json() == {
            "message": "invalid_token",
            "error": "not_found",
            "status": 401,
            "cause": [],
        }


def test_messages_call_without_tag_is_400(target: Target) -> None:
    """Every `/messages` call carries `tag=post_sale`; without it, 400 (the body is our stand-in)."""
    refused = target.http.get(
        conversation_path(target), params={"mark_as_read": "false"}, headers=target.headers
    )
    assert refused.status_code == 400
    if not target.live:
        assert refused.json() == {
            "message": "tag param is required",
            "error": "bad_request",
            "status": 400,
            "cause": [],
        }
