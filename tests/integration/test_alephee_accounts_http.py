"""Issue 17, items 1 and 2: GET /v2/accounts, /v2/accounts/{accountId}/marketplaces and /stores and
/v2/products answer as Alephee's API v2 does (its envelope, its records, validated against the JSON
Schemas in tests/contract/alephee_schemas), with the checks of every read; the admin API and the CLI
set an account's BusinessName, DocType and DocNumber. Over HTTP, on both databases."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

import httpx2
import jsonschema_rs
import pytest

from postventa.domain.sites import Site
from postventa.services import admin
from postventa.store.links import MarketplaceLink, save_link
from tests.factories import PEPPER, Tenant, make_tenant, now
from tests.integration.http_helpers import RATE_LIMIT_HEADERS, assert_refused
from tests.integration.test_admin_cli import ADMIN, api_on, postventa, run_cli

SCHEMAS = Path(__file__).parents[1] / "contract" / "alephee_schemas"


def schema(name: str) -> Any:
    return jsonschema_rs.validator_for(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


def assert_alephee_list(body: dict[str, Any], record_schema: str) -> list[dict[str, Any]]:
    """Alephee's envelope with integer Paging, every record valid, and no `next_page` to follow."""
    schema("envelope").validate(body)
    assert "next_page" not in body
    paging = body["Paging"]
    assert all(type(paging[name]) is int for name in ("Limit", "Offset", "Total")), paging
    assert body["Total"] == paging["Total"]
    records = schema(record_schema)
    for record in body["Results"]:
        records.validate(record)
    results: list[dict[str, Any]] = body["Results"]
    return results


async def key_for(database, account_ids: list[int], rate_limits: str | None = None) -> str:
    async with database.transaction(write=True) as connection:
        created = await admin.create_api_key(connection, account_ids, PEPPER, now(), rate_limits)
    return created.api_key


async def link(database, tenant: Tenant, site: Site = Site.MLA) -> int:
    seller_id = secrets.randbelow(10**12) + 10**12
    expires_at = now() + dt.timedelta(hours=5)
    stored = MarketplaceLink(
        tenant.account_id, seller_id, site, "app", "app-secret", "refresh", "access", expires_at
    )
    async with database.transaction(write=True) as connection:
        await save_link(connection, stored, now(), database.token_cipher)
    return seller_id


async def patch_account(client, account_id: int, body: object) -> httpx2.Response:
    return await client.patch(f"/admin/accounts/{account_id}", json=body, headers=ADMIN)


# GET /v2/accounts


async def test_accounts_lists_what_the_key_opens_in_alephees_envelope(client, database):
    first = await make_tenant(database, name="Tienda Norte")
    second = await make_tenant(database, name="Tienda Sur")
    other = await make_tenant(database, name="Tienda Ajena")
    api_key = await key_for(database, [second.account_id, first.account_id])
    updated = await patch_account(
        client, second.account_id, {"BusinessName": "Sur S.A.", "DocType": "CUIT", "DocNumber": "30-1-9"}
    )
    assert updated.status_code == 200, updated.text

    # As the Singer tap asks: the key alone, its name in lower case, nothing else.
    response = await client.get("/v2/accounts", params={"api_key": api_key})

    assert response.status_code == 200, response.text
    results = assert_alephee_list(response.json(), "accounts")
    assert results == [
        {
            "Id": first.account_id,
            "Name": "Tienda Norte",
            "BusinessName": None,
            "DocType": None,
            "DocNumber": None,
        },
        {
            "Id": second.account_id,
            "Name": "Tienda Sur",
            "BusinessName": "Sur S.A.",
            "DocType": "CUIT",
            "DocNumber": "30-1-9",
        },
    ]
    assert response.json()["Paging"] == {"Limit": 2, "Offset": 0, "Total": 2}
    assert b"Tienda Ajena" not in response.content
    assert other.account_id not in {account["Id"] for account in results}
    assert all(name in response.headers for name in RATE_LIMIT_HEADERS)


@pytest.mark.parametrize("key_name", ["API_KEY", "api_key", "Api_Key"])
async def test_accounts_takes_the_key_under_any_casing_or_in_the_header(client, database, key_name):
    tenant = await make_tenant(database, name="Tienda Casing")

    in_query = await client.get("/v2/accounts", params={key_name: tenant.api_key})
    in_header = await client.get("/v2/accounts", headers={"X-API-Key": tenant.api_key})

    for response in (in_query, in_header):
        assert response.status_code == 200, response.text
        assert [account["Id"] for account in response.json()["Results"]] == [tenant.account_id]


async def test_accounts_refuses_a_missing_or_unknown_key(client, database):
    tenant = await make_tenant(database)

    assert_refused(await client.get("/v2/accounts"), 401, "api_key_missing")
    unknown = await client.get("/v2/accounts", params={"api_key": tenant.api_key[:-2] + "xx"})
    assert_refused(unknown, 401, "api_key_invalid")


async def test_accounts_with_an_account_checks_it_as_every_read_does(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database, name="Otra")

    own = await client.get("/v2/accounts", params=tenant.credentials())
    foreign = await client.get(
        "/v2/accounts", params={"API_KEY": tenant.api_key, "accountId": other.account_id}
    )
    malformed = await client.get("/v2/accounts", params={"API_KEY": tenant.api_key, "accountId": "uno"})

    assert own.status_code == 200
    assert_refused(foreign, 403, "account_not_allowed")
    assert_refused(malformed, 400, "account_id_invalid")
    assert all(name in foreign.headers for name in RATE_LIMIT_HEADERS)


async def test_accounts_counts_against_the_keys_read_limit(client, database):
    tenant = await make_tenant(database)
    api_key = await key_for(database, [tenant.account_id], "send=10/minute,read=2/minute")

    answers = [await client.get("/v2/accounts", params={"api_key": api_key}) for _ in range(3)]
    account_read = await client.get("/v2/orders", params={"API_KEY": api_key, "accountId": tenant.account_id})

    assert [answer.status_code for answer in answers[:2]] == [200, 200]
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers[:2]] == ["1", "0"]
    assert_refused(answers[2], 429, "rate_limited")
    assert "retry-after" in answers[2].headers
    assert_refused(account_read, 429, "rate_limited")  # one "read" class for all reads


# GET /v2/accounts/{accountId}/marketplaces and /stores


async def test_marketplaces_of_a_linked_account_is_mercado_libre_with_its_seller(client, database):
    tenant = await make_tenant(database)
    seller_id = await link(database, tenant, Site.MLB)

    response = await client.get(
        f"/v2/accounts/{tenant.account_id}/marketplaces", params={"api_key": tenant.api_key}
    )

    assert response.status_code == 200, response.text
    [marketplace] = assert_alephee_list(response.json(), "marketplaces")
    assert marketplace == {
        "Id": 1,
        "Name": "MercadoLibre",
        "SiteId": "MLB",
        "SellerId": seller_id,
        "LinkStatus": "active",
    }
    assert response.json()["Paging"] == {"Limit": 1, "Offset": 0, "Total": 1}
    assert all(name in response.headers for name in RATE_LIMIT_HEADERS)


@pytest.mark.parametrize("what", ["marketplaces", "stores"])
async def test_an_account_without_them_has_no_results(client, database, what):
    tenant = await make_tenant(database)

    response = await client.get(
        f"/v2/accounts/{tenant.account_id}/{what}", params={"api_key": tenant.api_key}
    )

    assert response.status_code == 200, response.text
    assert assert_alephee_list(response.json(), what) == []
    assert response.json()["Paging"] == {"Limit": 0, "Offset": 0, "Total": 0}


async def test_stores_of_a_linked_account_are_none(client, database):
    tenant = await make_tenant(database)
    await link(database, tenant)

    response = await client.get(
        f"/v2/accounts/{tenant.account_id}/stores", params={"api_key": tenant.api_key}
    )

    assert response.status_code == 200
    assert response.json()["Results"] == []


@pytest.mark.parametrize("what", ["marketplaces", "stores"])
async def test_account_paths_check_key_and_account(client, database, what):
    tenant = await make_tenant(database)
    other = await make_tenant(database)
    other_seller = await link(database, other)

    foreign = await client.get(f"/v2/accounts/{other.account_id}/{what}", params={"api_key": tenant.api_key})
    no_key = await client.get(f"/v2/accounts/{tenant.account_id}/{what}")
    malformed = await client.get(f"/v2/accounts/uno/{what}", params={"api_key": tenant.api_key})
    zero = await client.get(f"/v2/accounts/0/{what}", params={"api_key": tenant.api_key})
    conflicting = await client.get(
        f"/v2/accounts/{tenant.account_id}/{what}", params={**tenant.credentials(accountId=other.account_id)}
    )
    agreeing = await client.get(f"/v2/accounts/{tenant.account_id}/{what}", params=tenant.credentials())

    assert_refused(foreign, 403, "account_not_allowed")
    assert str(other_seller).encode() not in foreign.content
    assert all(name in foreign.headers for name in RATE_LIMIT_HEADERS)
    assert_refused(no_key, 401, "api_key_missing")
    assert_refused(malformed, 400, "account_id_invalid")
    assert_refused(zero, 400, "account_id_invalid")
    assert_refused(conflicting, 400, "conflicting_parameter")
    assert agreeing.status_code == 200


# GET /v2/products


async def test_products_is_an_empty_page_with_integer_paging(client, database):
    tenant = await make_tenant(database)
    params = {"accountId": tenant.account_id, "api_key": tenant.api_key}

    first = await client.get("/v2/products", params=params)
    later = await client.get(
        "/v2/products", params={"accountId": tenant.account_id, "offset": 200, "api_key": tenant.api_key}
    )
    smaller = await client.get("/v2/products", params={**params, "limit": 5})

    for response in (first, later, smaller):
        assert response.status_code == 200, response.text
        assert assert_alephee_list(response.json(), "products") == []
        assert all(name in response.headers for name in RATE_LIMIT_HEADERS)
    assert first.json()["Paging"] == {"Limit": 100, "Offset": 0, "Total": 0}
    assert later.json()["Paging"] == {"Limit": 100, "Offset": 200, "Total": 0}
    assert smaller.json()["Paging"] == {"Limit": 5, "Offset": 0, "Total": 0}
    # The tap's loop: Offset + Limit < Total asks for more; here it stops at once.
    paging = first.json()["Paging"]
    assert not paging["Offset"] + paging["Limit"] < paging["Total"]


async def test_products_checks_key_account_and_window(client, database):
    tenant = await make_tenant(database)
    other = await make_tenant(database)

    foreign = await client.get(
        "/v2/products", params={"api_key": tenant.api_key, "accountId": other.account_id}
    )
    no_account = await client.get("/v2/products", params={"api_key": tenant.api_key})
    bad_offset = await client.get("/v2/products", params=tenant.credentials(offset=-1))
    bad_limit = await client.get("/v2/products", params=tenant.credentials(limit=0))

    assert_refused(foreign, 403, "account_not_allowed")
    assert_refused(no_account, 400, "account_id_missing")
    assert_refused(bad_offset, 400, "offset_invalid")
    assert_refused(bad_limit, 400, "limit_invalid")


# PATCH /admin/accounts/{id}


async def test_patch_sets_clears_and_keeps_fields(client, database):
    tenant = await make_tenant(database, name="Tienda Patch")
    url = f"/admin/accounts/{tenant.account_id}"

    set_all = await patch_account(
        client, tenant.account_id, {"BusinessName": " Patch SRL ", "DocType": "CUIT", "DocNumber": "20-123-4"}
    )
    renamed = await patch_account(client, tenant.account_id, {"Name": "Tienda Nueva"})
    cleared = await patch_account(client, tenant.account_id, {"DocType": None, "DocNumber": None})
    shown = await client.get(url, headers=ADMIN)

    assert set_all.status_code == 200, set_all.text
    assert set_all.json() | {"MercadoLibre": None} == {
        "Id": tenant.account_id,
        "Name": "Tienda Patch",
        "BusinessName": "Patch SRL",
        "DocType": "CUIT",
        "DocNumber": "20-123-4",
        "MercadoLibre": None,
    }
    assert (renamed.json()["Name"], renamed.json()["BusinessName"]) == ("Tienda Nueva", "Patch SRL")
    assert shown.status_code == 200
    assert shown.json() == cleared.json()
    assert {key: shown.json()[key] for key in ("Name", "BusinessName", "DocType", "DocNumber")} == {
        "Name": "Tienda Nueva",
        "BusinessName": "Patch SRL",
        "DocType": None,
        "DocNumber": None,
    }
    listed = await client.get("/v2/accounts", params={"api_key": tenant.api_key})
    assert listed.json()["Results"][0]["Name"] == "Tienda Nueva"


INVALID_PATCHES = {
    "empty": {},
    "null_name": {"Name": None},
    "blank_name": {"Name": "   "},
    "empty_doc_type": {"DocType": ""},
    "long_business_name": {"BusinessName": "x" * 201},
    "long_doc_type": {"DocType": "x" * 33},
    "long_doc_number": {"DocNumber": "1" * 65},
    "number_doc_number": {"DocNumber": 20123},
    "unknown_field": {"Cuit": "20-123-4"},
    "not_an_object": ["Name"],
}


@pytest.mark.parametrize("case", list(INVALID_PATCHES))
async def test_patch_refuses_an_invalid_body_and_changes_nothing(client, database, case):
    tenant = await make_tenant(database, name="Tienda Intacta")
    before = (await client.get(f"/admin/accounts/{tenant.account_id}", headers=ADMIN)).json()

    response = await patch_account(client, tenant.account_id, INVALID_PATCHES[case])

    body = assert_refused(response, 400, "invalid_body")
    assert body["Message"]
    assert (await client.get(f"/admin/accounts/{tenant.account_id}", headers=ADMIN)).json() == before


async def test_patch_refuses_control_characters_unknown_accounts_and_no_token(client, database):
    tenant = await make_tenant(database)

    control = await patch_account(client, tenant.account_id, {"BusinessName": "Tienda\x07"})
    unknown = await patch_account(client, 999_999_999_999, {"Name": "Nadie"})
    malformed_id = await patch_account(client, "uno", {"Name": "Nadie"})  # type: ignore[arg-type]
    not_json = await client.patch(f"/admin/accounts/{tenant.account_id}", content=b"Name=x", headers=ADMIN)
    no_token = await client.patch(f"/admin/accounts/{tenant.account_id}", json={"Name": "Intrusa"})

    assert_refused(control, 400, "invalid_characters")
    assert_refused(unknown, 404, "account_not_found")
    assert_refused(malformed_id, 400, "account_id_invalid")
    assert_refused(not_json, 415, "unsupported_media_type")
    assert_refused(no_token, 401, "admin_token_invalid")


# The CLI


async def test_cli_update_sets_and_clears_what_accounts_show_and_the_api_show(database, database_url):
    account = postventa(database_url, "accounts", "create", "Tienda CLI 17")
    key = postventa(database_url, "keys", "create", "--account", account["Id"])

    updated = postventa(
        database_url,
        "accounts",
        "update",
        account["Id"],
        "--business-name",
        "CLI S.A.",
        "--doc-type",
        "CUIT",
        "--doc-number",
        "30-71-2",
    )
    renamed = postventa(
        database_url, "accounts", "update", account["Id"], "--name", "Tienda CLI", "--doc-type", ""
    )
    shown = postventa(database_url, "accounts", "show", account["Id"])

    assert (updated["BusinessName"], updated["DocType"], updated["DocNumber"]) == (
        "CLI S.A.",
        "CUIT",
        "30-71-2",
    )
    assert shown == renamed
    assert (shown["Name"], shown["BusinessName"], shown["DocType"], shown["DocNumber"]) == (
        "Tienda CLI",
        "CLI S.A.",
        None,
        "30-71-2",
    )
    async with api_on(database_url) as http:
        listed = await http.get("/v2/accounts", params={"api_key": key["ApiKey"]})
    assert listed.json()["Results"] == [
        {
            "Id": account["Id"],
            "Name": "Tienda CLI",
            "BusinessName": "CLI S.A.",
            "DocType": None,
            "DocNumber": "30-71-2",
        }
    ]


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        ((), "invalid_body", 2),
        (("--name", ""), "invalid_body", 2),
        (("--doc-number", "1" * 65), "invalid_body", 2),
    ],
    ids=["nothing", "empty_name", "long_doc_number"],
)
def test_cli_update_refusals_exit_non_zero(tmp_path, args, code, exit_code):
    database_url = f"sqlite:///{tmp_path / 'postventa.db'}"
    account = postventa(database_url, "accounts", "create", "Tienda")

    result = run_cli(database_url, "accounts", "update", account["Id"], *args)

    assert result.returncode == exit_code, result.stderr
    assert code in result.stderr
    assert postventa(database_url, "accounts", "show", account["Id"])["Name"] == "Tienda"


def test_cli_update_of_an_unknown_account_exits_3(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'postventa.db'}"
    postventa(database_url, "accounts", "create", "Tienda")

    result = run_cli(database_url, "accounts", "update", 999_999, "--name", "Nadie")

    assert result.returncode == 3
    assert "account_not_found" in result.stderr
