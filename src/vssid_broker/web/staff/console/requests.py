"""The person's requests in the console: the queue by kind and age, one request with its
history, claim and decide (the same compare-and-set on `version` as the admin API)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import service as staff
from vssid_broker.requests import processing, service
from vssid_broker.requests.labels import LABELS
from vssid_broker.requests.models import RequestKind
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.staff.console.base import SignedIn, console_router, form_of, page, see_other

router = console_router()


@router.get("/requests", response_class=HTMLResponse)
async def request_queue(request: Request, ctx: Ctx, console: SignedIn, kind: str = "") -> Response:
    console.require(staff.READS_CASES)
    chosen = kind if kind in set(RequestKind) else None
    async with ctx.db() as session:
        entries = await processing.queue(session, kind=chosen)
        counts = await processing.queue_counts(session)
    return page(
        request, "requests_queue.html", console, entries=entries, counts=counts, kind=chosen,
        labels=LABELS, now=ctx.clock(),
    )  # fmt: skip


@router.get("/requests/{reference}", response_class=HTMLResponse)
async def request_page(request: Request, ctx: Ctx, console: SignedIn, reference: str) -> Response:
    console.require(staff.READS_CASES)
    async with ctx.db() as session:
        entry = await processing.get_for_staff(session, reference)
        events = await service.history(session, entry.request.id)
    return page(
        request, "request.html", console, entry=entry, events=events, labels=LABELS,
        can_process=console.can(staff.DECIDES),
    )  # fmt: skip


@router.post("/requests/{reference}/{action}")
async def act_on_request(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    reference: str,
    action: str,
    request_id: RequestId,
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.DECIDES)
    version = int(form["version"]) if form.get("version", "").isdigit() else 0
    who = processing.StaffActor(console.user.username, console.user.account_id)
    async with ctx.db.begin() as session:
        if action == "claim":
            await processing.claim(
                session, reference, version=version, staff=who, now=ctx.clock(),
                request_id=request_id,
            )  # fmt: skip
        else:
            await processing.decide(
                session, reference, version=version, outcome=form.get("outcome", ""),
                reason=form.get("reason"), staff=who, now=ctx.clock(), request_id=request_id,
            )  # fmt: skip
    return see_other(f"/admin/requests/{reference}")
