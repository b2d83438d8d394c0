"""The public API's plain Starlette routes (api/routing.py): each one documented as it answers,
what no route takes still answered by the framework, and every request labelled with its route."""

from __future__ import annotations

import httpx2

from postventa.api.routing import DocumentedRoute
from postventa.wiring import create_app
from tests.conftest import make_settings


def test_every_plain_route_is_an_operation_of_the_document(tmp_path):
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'plain.db'}"))
    document = app.openapi()
    plain = [route for route in app.routes if isinstance(route, DocumentedRoute)]
    assert len(plain) == 11  # the /v2 routes: 1 send, 10 reads
    for route in plain:
        operation = document["paths"][route.path][route.method]
        in_path = [parameter for parameter in operation["parameters"] if parameter["in"] == "path"]
        assert [parameter["name"] for parameter in in_path] == route.path_parameters
        assert all(parameter["schema"]["type"] == "integer" for parameter in in_path)
        assert {"200", "400", "401", "408", "431", "500"} <= set(operation["responses"])
        assert operation["summary"]
        assert operation["description"]
        assert operation["tags"]


def test_the_attachment_download_documents_only_the_file_types_it_answers(tmp_path):
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'plain.db'}"))
    path = app.openapi()["paths"]["/v2/orders/{orderId}/messages/{messageId}/attachment"]
    assert set(path["get"]["responses"]["200"]["content"]) == {
        "application/pdf",
        "image/jpeg",
        "image/png",
        "text/plain",
    }


async def test_what_no_route_takes_is_answered_by_the_framework(client: httpx2.AsyncClient):
    # A trailing slash is not the send route's path: the router redirects it to the path without,
    # and a method no route takes is a 405 with the allowed methods.
    slash = await client.post("/v2/orders/1/messages/")
    wrong_method = await client.put("/v2/orders/1/messages")
    head = await client.head("/v2/orders/1/messages")
    assert slash.status_code == 307
    assert slash.headers["location"].endswith("/v2/orders/1/messages")
    assert wrong_method.status_code == 405
    # Both routes on that path (the send and the conversation), as RFC 9110 asks; only the methods
    # the document lists.
    assert {method.strip() for method in wrong_method.headers["allow"].split(",")} == {"GET", "POST"}
    assert head.status_code == 405


async def test_a_plain_route_is_labelled_with_its_template(client: httpx2.AsyncClient):
    await client.post("/v2/orders/123/messages")  # refused (no key): still counted under the template
    await client.get("/v2/orders/123/messages/9/attachment")
    await client.put("/v2/orders/123/messages")  # a method the path does not take
    metrics = (await client.get("/metrics")).text
    assert 'method="POST",route="/v2/orders/{orderId}/messages",status="401"' in metrics
    assert 'route="/v2/orders/{orderId}/messages/{messageId}/attachment"' in metrics
    assert 'method="PUT",route="/v2/orders/{orderId}/messages",status="405"' in metrics
    assert "/v2/orders/123" not in metrics
