"""The admin API's console users (issue 19): people who sign in to the operator console, apart from
API keys (machines). Behind the same admin token, with the same error body, as the rest of /admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from postventa.api.context import Context
from postventa.api.routes.admin import require_admin, validated_body
from postventa.api.routes.messages import path_id
from postventa.domain.console_users import MAX_PASSWORD_CHARACTERS, OPERATOR
from postventa.services import console_users
from postventa.store.console_users import ConsoleUser

Admin = Annotated[Context, Depends(require_admin)]
# Not in the OpenAPI document yet: the document's schemas live in api/openapi_bodies.py (docs/console.md).
router = APIRouter(prefix="/admin", tags=["Administration"], include_in_schema=False)

AccountIds = Annotated[list[Annotated[int, Field(gt=0, lt=2**63)]], Field(min_length=1, max_length=1000)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD_CHARACTERS)]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    Email: Annotated[str, Field(max_length=1000)]
    Password: Password
    AccountIds: AccountIds
    Role: str = OPERATOR


class UserUpdateIn(BaseModel):
    """Any of the three; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    Password: Annotated[str | None, Field(max_length=MAX_PASSWORD_CHARACTERS)] = None
    AccountIds: Annotated[
        list[Annotated[int, Field(gt=0, lt=2**63)]] | None, Field(min_length=1, max_length=1000)
    ] = None
    Role: str | None = None


def user_json(user: ConsoleUser) -> dict[str, object]:
    """A console user as the admin API shows it (never its password hash)."""
    return {"Id": user.id, "Email": user.email, "AccountIds": list(user.account_ids), "Role": user.role}


@router.post("/users", status_code=201)
async def create_user(request: Request, context: Admin) -> Response:
    """A console user for one or more accounts; a taken email is a 409."""
    body = await validated_body(request, UserIn)
    async with context.database.transaction(write=True) as connection:
        user = await console_users.create_user(
            connection,
            email=body.Email,
            password=body.Password,
            account_ids=body.AccountIds,
            role=body.Role,
            now=context.clock(),
        )
    return JSONResponse(user_json(user), status_code=201)


@router.get("/users")
async def list_users(context: Admin) -> Response:
    """Every console user."""
    async with context.database.transaction() as connection:
        found = await console_users.list_users(connection)
    return JSONResponse({"Results": [user_json(user) for user in found]})


@router.patch("/users/{userId}")
async def update_user(userId: str, request: Request, context: Admin) -> Response:
    """Change a user's Password (their sessions end), AccountIds or Role."""
    user_id = path_id(userId, "userId", "user_id_invalid")
    body = await validated_body(request, UserUpdateIn)
    changes = console_users.UserChanges(password=body.Password, account_ids=body.AccountIds, role=body.Role)
    async with context.database.transaction(write=True) as connection:
        user = await console_users.update_user(connection, user_id, changes)
    return JSONResponse(user_json(user))


@router.delete("/users/{userId}", status_code=204)
async def delete_user(userId: str, context: Admin) -> Response:
    """Delete a user; their sessions end."""
    user_id = path_id(userId, "userId", "user_id_invalid")
    async with context.database.transaction(write=True) as connection:
        await console_users.delete_user(connection, user_id)
    return Response(status_code=204)
