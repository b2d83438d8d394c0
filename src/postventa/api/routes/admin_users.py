"""The admin API's console users (issue 19): people who sign in to the operator console, apart from
API keys (machines). Behind the same admin token, with the same error body, as the rest of /admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from postventa.api import openapi
from postventa.api.context import Context
from postventa.api.openapi_bodies import ref
from postventa.api.routes.admin import require_admin, validated_body
from postventa.api.routes.messages import path_id
from postventa.domain.console_users import (
    MAX_EMAIL_CHARACTERS,
    MAX_PASSWORD_CHARACTERS,
    MIN_PASSWORD_CHARACTERS,
    OPERATOR,
    ROLES,
)
from postventa.services import console_users
from postventa.store.console_users import ConsoleUser

Admin = Annotated[Context, Depends(require_admin)]
router = APIRouter(prefix="/admin", tags=["Administration"])

# The models take any text and the service gives the refusals their codes (invalid_email,
# invalid_password, invalid_role); the documents' schemas say what it accepts.
EmailText = Annotated[
    str,
    Field(max_length=1000),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 1000,
            "description": f"An email address of at most {MAX_EMAIL_CHARACTERS} characters once trimmed; "
            "kept in lower case.",
            "example": "ana@tienda.com",
        }
    ),
]
PasswordText = Annotated[
    str,
    Field(max_length=MAX_PASSWORD_CHARACTERS),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": MIN_PASSWORD_CHARACTERS,
            "maxLength": MAX_PASSWORD_CHARACTERS,
            "description": "Kept only as its Argon2 hash.",
        }
    ),
]
RoleName = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(ROLES),
            "description": "operator: reads and sends for their accounts; admin: also the failed messages.",
        }
    ),
]
AccountIdList = Annotated[list[Annotated[int, Field(gt=0, lt=2**63)]], Field(min_length=1, max_length=1000)]


class UserIn(BaseModel):
    """A new console user; Role left out: operator."""

    model_config = ConfigDict(extra="forbid")
    Email: EmailText
    Password: PasswordText
    AccountIds: AccountIdList
    Role: RoleName = OPERATOR


class UserUpdateIn(BaseModel):
    """At least one of the three; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    Password: PasswordText | None = None
    AccountIds: AccountIdList | None = None
    Role: RoleName | None = None


def user_json(user: ConsoleUser) -> dict[str, object]:
    """A console user as the admin API shows it (never its password hash)."""
    return {"Id": user.id, "Email": user.email, "AccountIds": list(user.account_ids), "Role": user.role}


@router.post(
    "/users",
    status_code=201,
    responses={
        **openapi.admin_responses(201, "The new console user.", ref("ConsoleUser")),
        **openapi.EMAIL_TAKEN_ERRORS,
    },
    openapi_extra=openapi.json_request_body(UserIn),
)
async def create_user(request: Request, context: Admin) -> Response:
    """A console user for one or more existing accounts, who signs in at /console/login with this
    email and password; a taken email is a 409 (email_taken)."""
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


@router.get(
    "/users",
    responses=openapi.admin_responses(200, "Every console user.", ref("ConsoleUsers"), reads_body=False),
)
async def list_users(context: Admin) -> Response:
    """Every console user, with their role and accounts (never a password or its hash)."""
    async with context.database.transaction() as connection:
        found = await console_users.list_users(connection)
    return JSONResponse({"Results": [user_json(user) for user in found]})


@router.patch(
    "/users/{userId}",
    responses=openapi.admin_responses(200, "The user now.", ref("ConsoleUser")),
    openapi_extra=openapi.json_request_body(UserUpdateIn),
)
async def update_user(userId: str, request: Request, context: Admin) -> Response:
    """Change a user's Password (their sessions end), AccountIds or Role."""
    user_id = path_id(userId, "userId", "user_id_invalid")
    body = await validated_body(request, UserUpdateIn)
    changes = console_users.UserChanges(password=body.Password, account_ids=body.AccountIds, role=body.Role)
    async with context.database.transaction(write=True) as connection:
        user = await console_users.update_user(connection, user_id, changes)
    return JSONResponse(user_json(user))


@router.delete(
    "/users/{userId}",
    status_code=204,
    responses=openapi.admin_responses(204, "Deleted; their sessions end.", reads_body=False),
)
async def delete_user(userId: str, context: Admin) -> Response:
    """Delete a user; their sessions end."""
    user_id = path_id(userId, "userId", "user_id_invalid")
    async with context.database.transaction(write=True) as connection:
        await console_users.delete_user(connection, user_id)
    return Response(status_code=204)
