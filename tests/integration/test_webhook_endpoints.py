"""services/webhooks.py on SQLite and PostgreSQL: endpoints registered with a sealed secret shown
once, listed, changed, rotated (the old secret kept for the overlap), deleted; URLs checked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from postventa.domain.errors import PostventaError
from postventa.domain.webhooks import SECRET_ROTATION_OVERLAP, key_of_secret
from postventa.services import webhooks
from postventa.store.tables import webhook_endpoints
from tests.factories import make_tenant, now


async def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


async def unresolvable(host: str, port: int) -> list[str]:
    raise OSError("no such host")


async def checked(url: str = "https://hooks.example.com/in", **options) -> webhooks.CheckedUrl:
    return await webhooks.check_url(url, allow_private=options.get("allow_private", False), resolver=public)


async def test_register_shows_the_secret_once_and_stores_it_sealed(database):
    tenant = await make_tenant(database)
    url = await checked()
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection,
            database.token_cipher,
            tenant.account_id,
            url,
            ["message.sent", "order.updated"],
            now(),
        )
    assert made.secret.startswith("whsec_")
    assert len(key_of_secret(made.secret)) == 32
    assert made.endpoint.events == ("message.sent", "order.updated")
    assert made.endpoint.enabled
    async with database.transaction() as connection:
        stored = (
            await connection.execute(
                select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == made.endpoint.id)
            )
        ).scalar_one()
        listed = await webhooks.list_endpoints(connection, tenant.account_id)
    assert made.secret not in stored
    assert database.token_cipher.open(stored) == made.secret
    assert listed == [made.endpoint]
    assert "secret" not in {field for field in vars(listed[0])}


async def test_events_omitted_are_all_and_unknown_ones_are_refused(database):
    tenant = await make_tenant(database)
    url = await checked()
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection, database.token_cipher, tenant.account_id, url, None, now()
        )
        assert len(made.endpoint.events) == 5
        with pytest.raises(PostventaError) as refused:
            await webhooks.register_endpoint(
                connection, database.token_cipher, tenant.account_id, url, ["message.gone"], now()
            )
    assert refused.value.refusal.code == "webhook_events_invalid"


async def test_an_unknown_account_or_endpoint_is_not_found(database):
    url = await checked()
    async with database.transaction(write=True) as connection:
        with pytest.raises(PostventaError) as no_account:
            await webhooks.register_endpoint(connection, database.token_cipher, 2**40, url, None, now())
        with pytest.raises(PostventaError) as no_endpoint:
            await webhooks.update_endpoint(connection, 2**40, enabled=False, now=now())
        with pytest.raises(PostventaError) as no_delete:
            await webhooks.delete_endpoint(connection, 2**40)
    assert no_account.value.refusal.code == "account_not_found"
    assert no_endpoint.value.refusal.code == no_delete.value.refusal.code == "webhook_not_found"


async def test_patch_changes_url_events_and_enabled(database):
    tenant = await make_tenant(database)
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection, database.token_cipher, tenant.account_id, await checked(), None, now()
        )
        moved = await webhooks.update_endpoint(
            connection,
            made.endpoint.id,
            url=await checked("https://other.example.com/x"),
            events=["message.received"],
            now=now(),
        )
        disabled = await webhooks.update_endpoint(connection, made.endpoint.id, enabled=False, now=now())
        enabled = await webhooks.update_endpoint(connection, made.endpoint.id, enabled=True, now=now())
        with pytest.raises(PostventaError) as nothing:
            await webhooks.update_endpoint(connection, made.endpoint.id, now=now())
    assert (moved.url, moved.events) == ("https://other.example.com/x", ("message.received",))
    assert not disabled.enabled
    assert disabled.disabled_at is not None
    assert (enabled.enabled, enabled.disabled_reason, enabled.disabled_at) == (True, None, None)
    assert nothing.value.refusal.code == "invalid_body"


async def test_rotation_keeps_the_old_secret_for_the_overlap(database):
    tenant = await make_tenant(database)
    at = now()
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection, database.token_cipher, tenant.account_id, await checked(), None, at
        )
        rotated = await webhooks.rotate_secret(connection, database.token_cipher, made.endpoint.id, at)
        stored = (
            await connection.execute(
                select(webhook_endpoints.c.secret, webhook_endpoints.c.previous_secret).where(
                    webhook_endpoints.c.id == made.endpoint.id
                )
            )
        ).one()
    assert rotated.secret != made.secret
    assert rotated.endpoint.previous_secret_expires_at == at + SECRET_ROTATION_OVERLAP
    assert database.token_cipher.open(stored.secret) == rotated.secret
    assert database.token_cipher.open(stored.previous_secret) == made.secret


async def test_delete_and_attempts(database):
    tenant = await make_tenant(database)
    async with database.transaction(write=True) as connection:
        made = await webhooks.register_endpoint(
            connection, database.token_cipher, tenant.account_id, await checked(), None, now()
        )
        assert await webhooks.list_attempts(connection, made.endpoint.id) == []
        with pytest.raises(PostventaError) as bad_page:
            await webhooks.list_attempts(connection, made.endpoint.id, limit=0)
        await webhooks.delete_endpoint(connection, made.endpoint.id)
        assert await webhooks.list_endpoints(connection, tenant.account_id) == []
        with pytest.raises(PostventaError) as gone:
            await webhooks.list_attempts(connection, made.endpoint.id)
    assert bad_page.value.refusal.code == "invalid_page"
    assert gone.value.refusal.code == "webhook_not_found"


async def test_check_url_refuses_private_and_unresolvable_hosts():
    for url, resolver, code in [
        ("https://hooks.example.com/", loopback, "webhook_url_private"),
        ("https://127.0.0.1/", public, "webhook_url_private"),
        ("https://[::ffff:10.0.0.1]/", public, "webhook_url_private"),
        ("https://nowhere.invalid/", unresolvable, "webhook_url_unresolved"),
        ("http://hooks.example.com/", public, "webhook_url_scheme"),
    ]:
        with pytest.raises(PostventaError) as refused:
            await webhooks.check_url(url, allow_private=False, resolver=resolver)
        assert refused.value.refusal.code == code, url
    allowed = await webhooks.check_url("http://localhost:8080/x", allow_private=True, resolver=loopback)
    assert allowed.addresses == ("127.0.0.1",)


async def test_the_system_resolver_resolves_localhost():
    addresses = await webhooks.system_resolver("localhost", 80)
    assert {"127.0.0.1", "::1"} & set(addresses)
