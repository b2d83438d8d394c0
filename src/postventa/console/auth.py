"""Signing in and out of the console, and who is signed in (issue 19, item 2)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postventa.console.context import ConsoleContext
from postventa.console.i18n import N_
from postventa.console.render import page, see_other
from postventa.console.sessions import SESSION_COOKIE, SIGNIN_COOKIE, new_nonce
from postventa.console.throttle import ThrottleUnavailable
from postventa.domain.console_users import normal_email
from postventa.services import console_users
from postventa.store.console_users import ConsoleUser, get_user

# One message for every failed sign-in: it tells no one whether the email has an account.
SIGNIN_FAILED = N_(
    "The email or the password is not right, or there were too many attempts. Try again later."
)
FORM_EXPIRED = N_("The form expired. Sign in again.")
# The failures cannot be counted (Redis is away): no sign-in is tried meanwhile (console/throttle.py).
SIGNIN_UNAVAILABLE = N_("Signing in is not possible right now. Try again in a moment.")
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
MAX_FORM_FIELD_CHARACTERS = 2000


@dataclass(frozen=True)
class SignedIn:
    """The user of a request, and the CSRF token of the forms shown to them."""

    user: ConsoleUser
    csrf: str

    @property
    def account_ids(self) -> frozenset[int]:
        """The accounts the user may see."""
        return frozenset(self.user.account_ids)


async def signed_in(context: ConsoleContext, request: Request) -> SignedIn | None:
    """The request's user, when its session cookie is valid, unexpired and its user still exists
    with the password it signed in with."""
    cookie = request.cookies.get(SESSION_COOKIE)
    claim = context.signer.read_claim(cookie, context.clock().timestamp())
    if claim is None or cookie is None:
        return None
    async with context.database.transaction() as connection:
        user = await get_user(connection, claim.user_id)
    if user is None or not context.signer.claim_holds(claim, user.password_hash):
        return None
    return SignedIn(user, context.signer.csrf_token(cookie))


def form_field(form: object, name: str, max_characters: int = MAX_FORM_FIELD_CHARACTERS) -> str:
    """A text field of a posted form, cut at `max_characters` ("" when absent or a file)."""
    value = form.get(name) if hasattr(form, "get") else None
    return value[:max_characters] if isinstance(value, str) else ""


def _client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def build_router(context: ConsoleContext) -> APIRouter:
    """/console/login and /console/logout."""
    router = APIRouter(include_in_schema=False)

    def signin_form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
        nonce = request.cookies.get(SIGNIN_COOKIE) or new_nonce()
        shown = context.gettext(request, error) if error is not None else None
        response = page(
            context, request, "login.html", status=status, error=shown, csrf=context.signer.csrf_token(nonce)
        )
        response.set_cookie(
            SIGNIN_COOKIE,
            nonce,
            httponly=True,
            samesite="lax",
            secure=context.secure_cookies,
            path="/console",
        )
        return response

    @router.get("/console/login")
    async def login_page(request: Request) -> Response:
        if await signed_in(context, request) is not None:
            return see_other("/console/")
        return signin_form(request)

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not context.signer.csrf_holds(request.cookies.get(SIGNIN_COOKIE), form_field(form, "csrf")):
            return signin_form(request, error=FORM_EXPIRED, status=403)
        email, address = normal_email(form_field(form, "email")), _client_address(request)
        try:
            user = await _checked_user(email, address, form_field(form, "password"))
        except ThrottleUnavailable:
            refused = signin_form(request, error=SIGNIN_UNAVAILABLE, status=503)
            refused.headers["retry-after"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
            return refused
        if user is None:
            return signin_form(request, error=SIGNIN_FAILED, status=401)
        return _start_session(user)

    async def _checked_user(email: str, address: str, password: str) -> ConsoleUser | None:
        """The user whose email and password these are, unless the throttle refuses the attempt;
        a failure (refused ones too) is counted."""
        user = None
        if await context.throttle.allows(email, address):
            async with context.database.transaction() as connection:
                user = await console_users.check_password(connection, email, password)
        if user is None:
            await context.throttle.failed(email, address)
        return user

    def _start_session(user: ConsoleUser) -> Response:
        expires_at = int(context.clock().timestamp()) + context.session_seconds
        cookie = context.signer.session_cookie(user.id, expires_at, user.password_hash)
        response = see_other("/console/")
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=context.session_seconds,
            httponly=True,
            samesite="lax",
            secure=context.secure_cookies,
            path="/",
        )
        response.delete_cookie(SIGNIN_COOKIE, path="/console")
        return response

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        session = request.cookies.get(SESSION_COOKIE)
        if not context.signer.csrf_holds(session, form_field(form, "csrf")):
            return page(context, request, "forbidden.html", status=403)
        response = see_other("/console/login")
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=context.secure_cookies
        )
        return response

    return router
