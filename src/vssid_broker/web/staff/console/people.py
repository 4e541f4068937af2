"""Finding and helping a person, in the console: search, the person's page (an audited read),
and its actions (their full citizen ID, ending their sessions, locking)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.accounts import service as accounts
from vssid_broker.admin import audited_reads, people
from vssid_broker.admin import service as staff
from vssid_broker.errors.staff import UnknownConsoleAction
from vssid_broker.identifiers import BHXH_CODE, CITIZEN_ID
from vssid_broker.linking import review
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.staff.console.base import (
    Console,
    SignedIn,
    console_router,
    form_of,
    page,
    reason_of,
    see_other,
)

router = console_router()


@router.get("/people", response_class=HTMLResponse)
async def people_search(
    request: Request, ctx: Ctx, console: SignedIn, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    console.require(staff.HELPS_PEOPLE)
    query = q.strip()
    async with ctx.db() as session:
        found = await accounts.search(session, query) if query else []
        # A number names one person: their open review case, if any, is what the clerk is
        # there for (the person on the phone waits for it).
        if CITIZEN_ID.match(query) or BHXH_CODE.match(query):
            case = await review.open_case_for(
                session,
                citizen_id=query if CITIZEN_ID.match(query) else None,
                account_id=found[0].id if found else None,
            )
            if case is not None:  # HELPS_PEOPLE may read cases (READS_CASES)
                return see_other(f"/admin/cases/{case.id}")
    return page(request, "people.html", console, q=q, found=found, searched=bool(query))


async def _person_page(
    request: Request, ctx: Ctx, console: Console, account_id: int, revealed: str | None = None
) -> Response:
    console.require(staff.HELPS_PEOPLE)
    async with ctx.db.begin() as session:
        found = await audited_reads.person(
            session, ctx.refresh_tokens, account_id,
            console.reader(ctx, request.state.request_id),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
        )  # fmt: skip
    return page(request, "person.html", console, person=found, revealed=revealed)


@router.get("/people/{account_id}", response_class=HTMLResponse)
async def person_page(request: Request, ctx: Ctx, console: SignedIn, account_id: int) -> Response:
    return await _person_page(request, ctx, console, account_id)


@router.post("/people/{account_id}/{action}")
async def act_on_person(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    account_id: int,
    action: str,
    request_id: RequestId,
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.HELPS_PEOPLE)
    now = ctx.clock()
    async with ctx.db.begin() as session:
        match action:
            case "citizen-id":
                shown = await audited_reads.account_citizen_id(
                    session, account_id, console.reader(ctx, request_id)
                )
            case "end-sessions":
                await people.end_sessions(
                    session, ctx.refresh_tokens, account_id, actor=console.actor,
                    reason=reason_of(form, required=True) or "", now=now, request_id=request_id,
                )  # fmt: skip
            case "lock" | "unlock":
                await people.set_locked(
                    session, ctx.refresh_tokens, account_id, locked=action == "lock",
                    actor=console.actor, reason=reason_of(form, required=True) or "", now=now,
                    request_id=request_id,
                )  # fmt: skip
            case _:
                raise UnknownConsoleAction(f"no action {action!r}")
    if action == "citizen-id":
        return await _person_page(request, ctx, console, account_id, revealed=shown)
    return see_other(f"/admin/people/{account_id}?done={action}")
