"""Staff management in the console (admins only): the list, a new staff user, a change."""

from __future__ import annotations

from typing import get_args

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffRole
from vssid_broker.errors.staff import UnknownConsoleAction
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.staff.console.base import (
    SignedIn,
    console_router,
    form_of,
    page,
    see_other,
)

router = console_router()
STAFF_CHANGES: dict[str, staff.StaffChange] = {c: c for c in get_args(staff.StaffChange)}


@router.get("/staff", response_class=HTMLResponse)
async def staff_page(request: Request, ctx: Ctx, console: SignedIn) -> Response:
    console.require(staff.MANAGES_STAFF)
    async with ctx.db() as session:
        users = await staff.list_staff(session)
    return page(request, "staff.html", console, users=users, roles=list(StaffRole))


@router.post("/staff")
async def create_staff(
    request: Request, ctx: Ctx, console: SignedIn, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.MANAGES_STAFF)
    role = form.get("role", "")
    if role not in set(StaffRole):
        raise UnknownConsoleAction(f"no role {role!r}")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        created = await staff.create_staff_user(
            session, username=form.get("username", "").strip()[:64],
            password=form.get("password", ""), role=StaffRole(role), now=now,
            citizen_id=form.get("citizen_id", "").strip() or None,
        )  # fmt: skip
        staff.record_created(session, created, actor=console.actor, now=now, request_id=request_id)
    return see_other("/admin/staff?done=created")


@router.post("/staff/{staff_id}")
async def change_staff(
    request: Request, ctx: Ctx, console: SignedIn, staff_id: int, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.MANAGES_STAFF)
    change = STAFF_CHANGES.get(form.get("change", ""))
    if change is None:
        raise UnknownConsoleAction("no such change")
    role = form.get("role") or None
    async with ctx.db.begin() as session:
        target = await staff.get_staff(session, staff_id)
        await staff.change_staff(
            session, target, change, actor=console.actor, now=ctx.clock(),
            request_id=request_id, password=form.get("password") or None,
            role=StaffRole(role) if role in set(StaffRole) else None,
        )  # fmt: skip
    return see_other(f"/admin/staff?done={change}")
