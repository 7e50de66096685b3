"""What every console page shares: templates (Jinja2, autoescaped), the page errors, flash notices, paging."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from mailtickets.errors import Conflict, InvalidInput, NotFound

HERE = Path(__file__).parent
PAGE_SIZE = 50
FLASH_COOKIE = "mt_flash"
# Scripts and styles come only from /admin/static; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@functools.cache
def templates() -> jinja2.Environment:
    """Built on first use, not at import: the CLI imports the app without serving a page."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["url"] = page_url  # also inside macros, which see no page context
    return environment


class ConsoleDenied(Exception):
    """The signed-in agent may not do this (403), or the form lacks its CSRF token."""


class SignInRequired(Exception):
    """No valid session: a page redirects to the sign-in form, a form post is refused."""


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))[:500]
    body = templates().get_template(template).render(request=request, flash=flash, **values)
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/admin")
    return response


def redirect(location: str, notice: str | None = None) -> RedirectResponse:
    """303 after a form post (Post/Redirect/Get), with a one-time notice shown on the next page."""
    response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
    if notice:
        response.set_cookie(FLASH_COOKIE, quote(notice[:400]), path="/admin", httponly=True, samesite="strict")
    return response


def page_url(path: str, query: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """A bookmarkable URL: `path` with the current filters and some of them changed (None drops one)."""
    merged = {**(query or {}), **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a newest-first list, by key (an id), so a deep page costs what the first one does."""

    rows: list[Any]
    next_before: int | None


def page_of(rows: list[Any], key: Callable[[Any], int], size: int = PAGE_SIZE) -> Page:
    """`rows` fetched with limit size+1: the extra one only says that there is a next page."""
    shown = rows[:size]
    return Page(shown, key(shown[-1]) if len(rows) > size and shown else None)


async def form_of(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {key: form.getlist(key) if len(form.getlist(key)) > 1 else form.get(key) for key in form}


def text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


class ConsoleRoute(APIRoute):
    """Console handlers answer with pages, not the API's JSON errors: one place maps errors to pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method == "GET":
                    return redirect(page_url("/admin/login", next=_local_path(request)))
                return _problem(request, 403, "Please sign in again", "Your session has ended.")
            except ConsoleDenied as exc:
                return _problem(request, 403, "Not allowed", str(exc))
            except NotFound as exc:
                return _problem(request, 404, "Not found", str(exc))
            except (Conflict, InvalidInput) as exc:
                return _problem(request, 409 if isinstance(exc, Conflict) else 422, "Refused", str(exc))

        return guarded


def _local_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _problem(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    user = getattr(request.state, "console_user", None)
    return render(request, "problem.html", status, user=user, title=title, detail=detail)
