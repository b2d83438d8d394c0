"""The hot send route (api/routing.py HotRoutes): it may only take requests no other route could,
and what it does not take still goes through the full stack."""

from __future__ import annotations

import re

import httpx2

from postventa.api.routes import messages
from postventa.wiring import create_app
from tests.conftest import make_settings


def sample_path(template: str) -> str:
    """The template with every parameter filled in (`/v2/orders/{orderId}` → `/v2/orders/1`)."""
    return re.sub(r"\{[^}]+\}", "1", template)


def test_no_other_operation_matches_a_hot_route(tmp_path):
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'hot.db'}"))
    hot = messages.send_route()
    others = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if (method.upper(), path) not in {(m, hot.path) for m in hot.methods or ()}
    ]
    assert others  # the document lists the other operations
    clashes = [
        (method, path)
        for method, path in others
        if method in (hot.methods or ()) and hot.path_regex.match(sample_path(path))
    ]
    assert clashes == []


async def test_what_the_hot_route_does_not_take_goes_through_the_full_stack(client: httpx2.AsyncClient):
    # A trailing slash is not the send route's path: the router redirects it to the path without,
    # and a method the route does not take is the full stack's 405, with the allowed methods.
    slash = await client.post("/v2/orders/1/messages/")
    wrong_method = await client.put("/v2/orders/1/messages")
    assert slash.status_code == 307
    assert slash.headers["location"].endswith("/v2/orders/1/messages")
    assert wrong_method.status_code == 405
    # Both routes on that path (the send and the conversation), as RFC 9110 asks.
    assert {method.strip() for method in wrong_method.headers["allow"].split(",")} == {"GET", "POST"}


async def test_a_send_through_the_hot_route_is_labelled_with_its_template(client: httpx2.AsyncClient):
    await client.post("/v2/orders/123/messages")  # refused (no key): still counted under the template
    metrics = (await client.get("/metrics")).text
    assert 'route="/v2/orders/{orderId}/messages"' in metrics
    assert 'route="/v2/orders/123/messages"' not in metrics
