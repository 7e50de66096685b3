"""/admin/login and /admin/logout, and /admin/ itself (the trace is the first page)."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from mailtickets.api.deps import AppContext, get_context
from mailtickets.console.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    User,
    client_address,
    cookie_options,
    require_csrf,
    sign_in,
    sign_out,
)
from mailtickets.console.web import ConsoleRoute, form_of, redirect, render, text

log = logging.getLogger(__name__)
router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]


def _limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.console_limiter
    return limiter


def _safe_next(target: str) -> str:
    # Only a path of this console: never an open redirect to another site (//evil.example, /\evil).
    if target.startswith("/admin/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/admin/trace"


def _login_page(request: Request, context: AppContext, status: int = 200, error: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    next_path = _safe_next(request.query_params.get("next", ""))
    response = render(request, "login.html", status, user=None, csrf=token, error=error, next_path=next_path)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_options(context.settings))
    return response


@router.get("/", include_in_schema=False)
async def home(_user: User) -> Response:
    return redirect("/admin/trace")


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, context: Context) -> Response:
    return _login_page(request, context)


@router.post("/login", include_in_schema=False)
async def login(request: Request, context: Context) -> Response:
    await require_csrf(request, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    form = await form_of(request)
    email, password = text(form, "email"), form.get("password")
    password = password if isinstance(password, str) else ""
    limiter, address = _limiter(request), client_address(request)
    wait = await limiter.retry_after(context.sessions, address, email)
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        error = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        log.warning("console sign-in refused for %r from %s: rate limited", email[:100], address)
        return _login_page(request, context, 429, error)
    signed = await sign_in(context, email, password)
    if signed is None:
        await limiter.failed(context.sessions, address, email)
        log.warning("console sign-in failed for %r from %s", email[:100], address)
        return _login_page(request, context, 401, "Wrong email address or password.")
    await limiter.succeeded(context.sessions, email)
    log.info("console sign-in: %s from %s", email, address)
    token, _user = signed
    response = redirect(_safe_next(text(form, "next")))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(context.settings.console_session_hours * 3600),
        **cookie_options(context.settings),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, context: Context, _user: User) -> Response:
    await sign_out(context, request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/admin/login", "Signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
