"""Faults, the rate limit and the journal, in-process (connection drops are in test_live.py)."""

from __future__ import annotations

import time

import pytest

from postventa.emulator import ConnectionDropped, EmulatorConfig
from tests.emulator.world import SellerSession, World

TOO_MANY = {"message": "too many requests", "error": "too_many_requests", "status": 429, "cause": []}


async def open_conversation(world: World) -> tuple[SellerSession, int]:
    seller = await world.seller()
    key = (await world.order(seller))["Key"]
    await world.buyer_writes(key)
    return seller, key


async def message_count(world: World, seller: SellerSession, key: int) -> int:
    return int((await world.conversation(seller, key, mark_as_read="false"))["paging"]["total"])


async def test_429_fault_with_retry_after_is_not_applied(world: World) -> None:
    seller, key = await open_conversation(world)
    rules = await world.faults(
        {"Route": "POST /messages/*", "Kind": "429", "Rate": 1, "RetryAfterSeconds": 3}
    )
    assert rules.json()["Faults"][0]["Kind"] == "429"
    refused = await world.send(seller, key, "Hola")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    assert refused.json() == TOO_MANY
    entry = await world.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (429, "429", False)
    await world.faults()
    assert await message_count(world, seller, key) == 1


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503)])
async def test_server_error_faults_are_not_applied(world: World, kind: str, status: int) -> None:
    seller, key = await open_conversation(world)
    await world.faults({"Route": f"POST /messages/packs/{key}/*", "Kind": kind})
    refused = await world.send(seller, key, "Hola")
    assert refused.status_code == status
    assert refused.json()["status"] == status
    entry = await world.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (status, kind, False)
    await world.faults()
    assert await message_count(world, seller, key) == 1


async def test_delay_fault_then_handles(world: World) -> None:
    seller, key = await open_conversation(world)
    await world.faults({"Route": "POST /messages/*", "Kind": "delay", "DelaySeconds": 0.3})
    started = time.monotonic()
    sent = await world.send(seller, key, "Hola")
    assert time.monotonic() - started >= 0.3
    assert sent.status_code == 201
    entry = await world.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (201, "delay", True)


async def test_timeout_fault_waits_then_504_not_applied(world: World) -> None:
    seller, key = await open_conversation(world)
    await world.faults({"Route": "POST /messages/*", "Kind": "timeout", "DelaySeconds": 0.2})
    started = time.monotonic()
    refused = await world.send(seller, key, "Hola")
    assert time.monotonic() - started >= 0.2
    assert refused.status_code == 504
    entry = await world.last_entry("POST", f"/messages/packs/{key}/sellers/{seller.id}")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (504, "timeout", False)
    await world.faults()
    assert await message_count(world, seller, key) == 1


async def test_drop_faults_in_process_raise_a_transport_error(world: World) -> None:
    seller, key = await open_conversation(world)
    await world.faults({"Route": "POST /messages/*", "Kind": "lost_response"})
    with pytest.raises(ConnectionDropped):
        await world.send(seller, key, "Hola")
    await world.faults()
    assert await message_count(world, seller, key) == 2


async def test_faults_never_touch_the_control_api(world: World) -> None:
    await world.faults({"Route": "*", "Kind": "500"})
    assert (await world.http.post("/_emulator/sellers", json={"SiteId": "MLA"})).status_code == 200
    assert (await world.http.get("/_emulator/config")).status_code == 200
    assert (await world.http.get("/users/me")).status_code == 500


async def test_fault_rate_is_reproducible_with_a_seed(world: World) -> None:
    async def pattern() -> list[int]:
        await world.faults({"Route": "GET /users/me", "Kind": "503", "Rate": 0.5}, seed=7)
        return [(await world.http.get("/users/me")).status_code for _ in range(20)]

    first, second = await pattern(), await pattern()
    assert first == second
    assert set(first) == {401, 503}


@pytest.mark.parametrize(
    "rule",
    [
        {"Route": "*", "Kind": "teapot"},
        {"Route": "*", "Kind": "500", "Rate": 1.5},
        {"Route": "", "Kind": "500"},
        {"Kind": "500"},
        {"Route": "*", "Kind": "delay", "DelaySeconds": -1},
    ],
)
async def test_bad_fault_rules_are_400(world: World, rule: dict[str, object]) -> None:
    assert (await world.faults(rule)).status_code == 400


async def test_faults_cleared_by_empty_list(world: World) -> None:
    await world.faults({"Route": "*", "Kind": "500"})
    assert (await world.faults()).json() == {"Faults": []}
    assert (await world.http.get("/users/me")).status_code == 401


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(reads_per_minute=3, writes_per_minute=2)])
async def test_rate_limit_per_application_and_endpoint(world: World) -> None:
    seller = await world.seller()
    reads = [(await world.http.get("/users/me", headers=seller.headers)).status_code for _ in range(4)]
    assert reads == [200, 200, 200, 429]
    refused = await world.http.get("/users/me", headers=seller.headers)
    assert refused.json() == TOO_MANY
    assert "retry-after" not in refused.headers
    entry = await world.last_entry("GET", "/users/me")
    assert (entry["Status"], entry["Fault"], entry["Applied"]) == (429, None, False)

    key = (await world.order(seller))["Key"]  # the control API is not limited
    await world.buyer_writes(key)
    writes = [(await world.send(seller, key, f"m{i}")).status_code for i in range(3)]
    assert writes == [201, 201, 429]  # the send has its own budget, apart from POST /oauth/token's

    other = await world.seller()  # another application has its own budget
    assert (await world.http.get("/users/me", headers=other.headers)).status_code == 200


async def test_rate_limit_changed_through_config(world: World) -> None:
    changed = await world.http.put("/_emulator/config", json={"ReadsPerMinute": 1})
    assert changed.json()["ReadsPerMinute"] == 1
    seller = await world.seller()
    assert (await world.http.get("/users/me", headers=seller.headers)).status_code == 200
    assert (await world.http.get("/users/me", headers=seller.headers)).status_code == 429


async def test_journal_since_and_next(world: World) -> None:
    start = (await world.journal())["Next"]
    seller = await world.seller()
    first = await world.journal(start)
    assert [(e["Method"], e["Path"]) for e in first["Entries"]] == [
        ("POST", "/_emulator/sellers"),
        ("POST", "/oauth/token"),
    ]
    assert first["Entries"][1]["Body"]["form"]["client_secret"] == "***"
    assert first["Next"] == first["Entries"][-1]["Seq"]
    await world.http.get("/orders/search", params={"seller": seller.id, "limit": 1}, headers=seller.headers)
    second = await world.journal(first["Next"])
    assert len(second["Entries"]) == 1
    entry = second["Entries"][0]
    assert entry["Query"] == {"seller": str(seller.id), "limit": "1"}
    assert (entry["Status"], entry["Applied"], entry["Fault"], entry["Body"]) == (200, True, None, None)
    assert (await world.journal(second["Next"]))["Entries"] == []
    assert (await world.journal(second["Next"]))["Next"] == second["Next"]


async def test_journal_records_multipart_and_refusals(world: World) -> None:
    seller = await world.seller()
    await world.http.post(
        "/messages/attachments",
        params={"tag": "post_sale", "site_id": "MLA"},
        files={"file": ("nota.txt", b"hola")},
        headers=seller.headers,
    )
    entry = await world.last_entry("POST", "/messages/attachments")
    assert entry["Body"] == {"multipart": [{"name": "file", "filename": "nota.txt", "size": 4}]}
    assert entry["Applied"] is True
    await world.http.get("/users/me")
    refused = await world.last_entry("GET", "/users/me")
    assert (refused["Status"], refused["Applied"]) == (401, False)


async def test_journal_clear_keeps_sequence(world: World) -> None:
    await world.seller()
    before = (await world.journal())["Next"]
    assert (await world.http.delete("/_emulator/journal")).status_code == 200
    await world.http.get("/users/me")
    entries = (await world.journal())["Entries"]
    assert [entry["Path"] for entry in entries] == ["/users/me"]
    assert entries[0]["Seq"] > before


async def test_journal_since_must_be_an_integer(world: World) -> None:
    assert (await world.http.get("/_emulator/journal", params={"since": "x"})).status_code == 400


async def test_journal_names_the_seller_whose_token_each_call_carried(world: World) -> None:
    first, second = await world.seller(), await world.seller()
    start = (await world.journal())["Next"]
    for seller in (first, second):
        await world.http.get("/users/me", headers=seller.headers)
    await world.http.get("/users/me")
    await world.http.get("/users/me", headers={"Authorization": "Bearer not-a-token"})
    entries = (await world.journal(start))["Entries"]
    assert [(e["SellerId"], e["Status"]) for e in entries] == [
        (first.id, 200),
        (second.id, 200),
        (None, 401),
        (None, 401),
    ]
