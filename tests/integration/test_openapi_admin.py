"""The admin API in the OpenAPI document (/openapi.json, shown at /docs): every /admin route the
application serves is an operation of it, documented as completely as the rest: its success and its
body, the admin API's refusals with their error body, its JSON request body, path ids as integers.
A route left out of the document (or documented by halves) fails here; the schemathesis test then
holds the answers to what is documented."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from fastapi.routing import APIRoute

from postventa.api import routes as route_modules
from postventa.wiring import create_app
from tests.conftest import make_settings

ERROR_BODY_FIELDS = {"Status", "Message", "Code"}
# What every admin operation may be refused with, beside its own refusals (409, 502...).
ADMIN_REFUSALS = {"400", "401", "404", "500"}


def admin_routes() -> list[APIRoute]:
    """The /admin routes of every module of api/routes (a new module's too)."""
    found = []
    for module_info in pkgutil.iter_modules(route_modules.__path__):
        module = importlib.import_module(f"{route_modules.__name__}.{module_info.name}")
        for route in getattr(getattr(module, "router", None), "routes", []):
            if isinstance(route, APIRoute) and route.path.startswith("/admin"):
                found.append(route)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[APIRoute], dict[str, Any]]:
    """The /admin routes and the application's OpenAPI document."""
    app = create_app(make_settings(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'admin.db'}"))
    return admin_routes(), app.openapi()


def admin_operations(routes: list[APIRoute]) -> list[tuple[str, str, APIRoute]]:
    return [(method.lower(), route.path, route) for route in routes for method in sorted(route.methods)]


def test_every_admin_route_is_an_operation_of_the_document(served):
    routes, document = served
    served_operations = {(method, path) for method, path, _ in admin_operations(routes)}
    documented = {
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/admin")
        for method in item
    }
    assert served_operations == documented
    # Users (issue 19) and webhooks (issue 20) among them.
    assert {("post", "/admin/users"), ("get", "/admin/users")} <= documented
    assert {("patch", "/admin/users/{userId}"), ("delete", "/admin/users/{userId}")} <= documented
    assert ("patch", "/admin/webhooks/{webhookId}") in documented


def test_every_admin_operation_documents_its_answers_and_its_body(served):
    routes, document = served
    schemas = document["components"]["schemas"]
    for method, path, route in admin_operations(routes):
        operation = document["paths"][path][method]
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        assert operation["tags"] == ["Administration"], where
        assert operation["description"], where  # the handler's docstring
        success = responses[str(route.status_code or 200)]
        if route.status_code != 204:
            body = success["content"]["application/json"]["schema"]
            assert body["$ref"].removeprefix("#/components/schemas/") in schemas, where
        assert ADMIN_REFUSALS <= set(responses), where
        for status, response in responses.items():
            if status.startswith("4"):
                error = response["content"]["application/json"]["schema"]
                assert set(error["required"]) == ERROR_BODY_FIELDS, (where, status)
        # A route that reads a JSON body documents it, and its 415; one that does not, neither.
        reads_body = "requestBody" in operation
        assert reads_body == ("415" in responses), where
        if method in ("put", "patch"):
            assert reads_body, where
        if reads_body:
            body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body_schema["type"] == "object", where
            assert body_schema["properties"], where
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["schema"]["type"] == "integer", (where, parameter["name"])


def test_the_users_routes_document_their_bodies(served):
    _, document = served
    user = {"$ref": "#/components/schemas/ConsoleUser"}
    users, one = document["paths"]["/admin/users"], document["paths"]["/admin/users/{userId}"]
    created = users["post"]
    assert created["responses"]["201"]["content"]["application/json"]["schema"] == user
    assert "email_taken" in created["responses"]["409"]["description"]
    new = created["requestBody"]["content"]["application/json"]["schema"]
    assert set(new["required"]) == {"Email", "Password", "AccountIds"}
    assert new["properties"]["Password"]["minLength"] == 10
    assert new["properties"]["Role"]["enum"] == ["operator", "admin"]
    assert new["additionalProperties"] is False
    assert users["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConsoleUsers"
    }
    assert one["patch"]["responses"]["200"]["content"]["application/json"]["schema"] == user
    change = one["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(change["properties"]) == {"Password", "AccountIds", "Role"}
    assert "content" not in one["delete"]["responses"]["204"]
    shown = document["components"]["schemas"]["ConsoleUser"]
    assert set(shown["required"]) == {"Id", "Email", "AccountIds", "Role"}  # never the password's hash
