"""/admin/rules: the ordered list, move, enable/disable, the editor, delete, TOML import/export, and the
live dry run (paste or upload an .eml, or pick a kept message from the trace)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from mailtickets.api.deps import AppContext, get_context
from mailtickets.console.auth import Admin, ConsoleUser, User
from mailtickets.console.rule_form import errors_by_field, form_values, read_form, row_count
from mailtickets.console.trace import kept_raw, why_not_kept
from mailtickets.console.web import ConsoleRoute, form_of, redirect, render, text
from mailtickets.db import transaction
from mailtickets.errors import Conflict, NotFound
from mailtickets.models import InboundMail
from mailtickets.pipeline.dryrun import dry_run
from mailtickets.rules.dryrun import describe_condition
from mailtickets.rules.model import ACTIONS, BOOL_FIELDS, TEXT_FIELDS, TEXT_OPERATORS, RulesInvalid, rule_from_dict
from mailtickets.rules.store import create_rule, delete_rule, get_rule, load_rules, replace_all_rules, update_rule
from mailtickets.rules.toml_io import dump_rules_toml, load_rules_toml
from mailtickets.storage import FileStore

router = APIRouter(route_class=ConsoleRoute)
Context = Annotated[AppContext, Depends(get_context)]
RuleName = Annotated[str, Path(min_length=1, max_length=200)]
VOCABULARY = {
    "fields": [*sorted(TEXT_FIELDS | BOOL_FIELDS), "header:X-Example"],
    "operators": sorted(TEXT_OPERATORS),
    "actions": list(ACTIONS),
}


def _actor(user: ConsoleUser) -> str:
    return f"console:{user.email}"


@router.get("/rules")
async def rules_list(request: Request, context: Context, user: User) -> HTMLResponse:
    async with context.sessions() as session:
        specs = await load_rules(session)
    return render(request, "rules.html", user=user, section="rules", specs=specs, describe=describe_condition)


def _editor(
    request: Request,
    user: ConsoleUser,
    values: dict[str, str],
    errors: dict[str, str],
    original: str | None,
    status: int = 200,
) -> HTMLResponse:
    rows = {"conditions": row_count(values, "c"), "actions": row_count(values, "a")}
    return render(
        request,
        "rule_edit.html",
        status,
        user=user,
        section="rules",
        values=values,
        errors=errors,
        original=original,
        rows=rows,
        vocabulary=VOCABULARY,
    )


@router.get("/rules/new")
async def new_rule(request: Request, user: Admin) -> HTMLResponse:
    return _editor(request, user, form_values(None), {}, None)


@router.get("/rules/{name}/edit")
async def edit_rule(request: Request, context: Context, user: Admin, name: RuleName) -> HTMLResponse:
    async with context.sessions() as session:
        spec = await get_rule(session, name)
    return _editor(request, user, form_values(spec), {}, spec.name)


@router.post("/rules/new")
async def create(request: Request, context: Context, user: Admin) -> Response:
    return await _save(request, context, user, None)


@router.post("/rules/{name}/edit")
async def update(request: Request, context: Context, user: Admin, name: RuleName) -> Response:
    return await _save(request, context, user, name)


async def _save(request: Request, context: AppContext, user: ConsoleUser, original: str | None) -> Response:
    form = read_form(await request.form())
    try:
        spec = rule_from_dict(form.data)
        async with transaction(context.sessions) as session:
            if original is None:
                await create_rule(session, spec, _actor(user))
            else:
                await update_rule(session, original, spec, _actor(user))
    except RulesInvalid as exc:
        return _editor(request, user, form.values, errors_by_field(exc.problems, form), original, 422)
    except Conflict as exc:
        return _editor(request, user, form.values, {"name": str(exc)}, original, 409)
    return redirect("/admin/rules", f"Rule {spec.name!r} saved.")


@router.post("/rules/{name}/toggle")
async def toggle(context: Context, user: Admin, name: RuleName) -> Response:
    async with transaction(context.sessions) as session:
        spec = await get_rule(session, name)
        await update_rule(session, name, replace(spec, enabled=not spec.enabled), _actor(user))
    return redirect("/admin/rules", f"Rule {name!r} {'disabled' if spec.enabled else 'enabled'}.")


@router.post("/rules/{name}/move")
async def move(request: Request, context: Context, user: Admin, name: RuleName) -> Response:
    step = -1 if text(await form_of(request), "direction") == "up" else 1
    async with transaction(context.sessions) as session:
        specs = list(await load_rules(session))
        index = next((i for i, s in enumerate(specs) if s.name == name), None)
        if index is None:
            raise NotFound(f"no rule named {name!r}")
        other = index + step
        if 0 <= other < len(specs):
            specs[index], specs[other] = specs[other], specs[index]
            for position, spec in enumerate(specs):  # renumbered: stored positions may have gaps or ties
                if spec.position != position:
                    await update_rule(session, spec.name, spec, _actor(user), position)
    return redirect("/admin/rules")


@router.post("/rules/{name}/delete")
async def remove(context: Context, user: Admin, name: RuleName) -> Response:
    async with transaction(context.sessions) as session:
        await delete_rule(session, name, _actor(user))
    return redirect("/admin/rules", f"Rule {name!r} deleted.")


@router.get("/rules/export")
async def export(context: Context, _user: User) -> Response:
    async with context.sessions() as session:
        specs = await load_rules(session)
    headers = {"Content-Disposition": 'attachment; filename="rules.toml"'}
    return Response(dump_rules_toml(specs), media_type="application/toml", headers=headers)


@router.post("/rules/import")
async def import_rules(request: Request, context: Context, user: Admin) -> Response:
    form = await form_of(request)
    upload = form.get("file")
    content = await upload.read() if isinstance(upload, UploadFile) else text(form, "toml").encode()
    try:
        specs = load_rules_toml(content.decode("utf-8"))
    except (RulesInvalid, UnicodeDecodeError) as exc:
        problems = [str(p) for p in exc.problems] if isinstance(exc, RulesInvalid) else ["the file is not UTF-8"]
        return redirect("/admin/rules", "Import refused, no rule was changed: " + "; ".join(problems))
    async with transaction(context.sessions) as session:
        await replace_all_rules(session, specs, _actor(user))
    return redirect("/admin/rules", f"Imported {len(specs)} rule(s).")


@router.get("/rules/dry-run")
async def dry_run_page(request: Request, context: Context, user: User) -> HTMLResponse:
    """With ?trace=ID: that trace entry's kept source, dry-run at once as if it arrived now; where its
    source is not kept, the page says why instead."""
    trace_id = request.query_params.get("trace", "")
    values: dict[str, Any] = {"eml": "", "mailbox": "pipe", "report": None, "error": "", "trace": ""}
    if trace_id.isdigit():
        record, raw, why = await _from_trace(context, int(trace_id))
        values.update(mailbox=record.source, trace=trace_id, error=why or "")
        if raw is not None:
            values["eml"] = raw.decode("utf-8", "replace")
            values["report"] = await dry_run(context.pipeline, raw, record.source, anew=record.id)
    return render(request, "dry_run.html", user=user, section="rules", **values)


@router.post("/rules/dry-run")
async def dry_run_post(request: Request, context: Context, user: User) -> HTMLResponse:
    """The full page, or (with ?fragment=1, from the page's script) only the report, as you type."""
    form = await form_of(request)
    upload = form.get("file")
    uploaded = isinstance(upload, UploadFile) and bool(upload.filename)
    raw = await upload.read() if isinstance(upload, UploadFile) and uploaded else b""
    raw = raw or text(form, "eml").replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    mailbox = text(form, "mailbox") or "pipe"
    trace, anew = text(form, "trace"), None
    if trace.isdigit() and not uploaded:
        # The text picked from the trace, unedited: dry-run the kept bytes as they arrived, as if anew.
        record, kept, _ = await _from_trace(context, int(trace))
        if kept is not None and _same_text(kept.decode("utf-8", "replace"), text(form, "eml")):
            raw, anew = kept, record.id
    report, error = None, ""
    if not raw.strip():
        error = "Paste a message or choose an .eml file."
    elif len(raw) > context.settings.max_message_bytes:
        error = f"The message is larger than max_message_bytes ({context.settings.max_message_bytes})."
    else:
        report = await dry_run(context.pipeline, raw, mailbox, anew=anew)
    template = "dry_run_report.html" if request.query_params.get("fragment") else "dry_run.html"
    eml = raw.decode("utf-8", "replace") if uploaded else text(form, "eml")
    values: dict[str, Any] = {"eml": eml, "mailbox": mailbox, "report": report, "error": error}
    values["trace"] = trace if anew else ""
    return render(request, template, user=user, section="rules", **values)


def _same_text(kept: str, submitted: str) -> bool:
    """A browser sends a textarea back with CRLF line ends and (here) stripped: compare what was shown."""
    return kept.replace("\r\n", "\n").strip() == submitted.replace("\r\n", "\n").strip()


async def _from_trace(context: AppContext, inbound_id: int) -> tuple[InboundMail, bytes | None, str | None]:
    """The trace entry, its kept raw bytes (None when not kept) and why they are not."""
    async with context.sessions() as session:
        record = await session.get(InboundMail, inbound_id)
    if record is None:
        raise NotFound(f"no inbound message {inbound_id}")
    store = FileStore(context.settings.raw_dir)
    why = why_not_kept(store, record)
    return record, (kept_raw(store, record) if why is None else None), why
