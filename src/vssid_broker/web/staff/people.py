"""Finding and helping a person, in the admin API: search, the person's page, their full
citizen ID, ending their sessions, locking; their linked identities."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from vssid_broker.accounts import service as accounts
from vssid_broker.admin import audited_reads, people
from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffUser
from vssid_broker.admin.schemas import (
    AccountFound,
    CaseSummary,
    LinkOut,
    PersonOut,
    PersonSummary,
    Reason,
    RevealedCitizenId,
    SessionOut,
    SessionsEnded,
)
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.params import RowId
from vssid_broker.web.staff.common import (
    ACCOUNT_ERRORS,
    LINKS,
    PEOPLE,
    PROBLEM,
    api_router,
    reader,
)

router = api_router(*staff.HELPS_PEOPLE)


@router.get(
    "/accounts",
    tags=LINKS,
    response_model=list[AccountFound],
    responses={422: {"description": "not a 12-digit citizen ID", **PROBLEM}},
)
async def find_accounts(
    ctx: Ctx,
    user: Staff,
    request_id: RequestId,
    citizen_id: Annotated[str, Query(pattern=r"^\d{12}$", description="12 digits, in full")],
) -> list[AccountFound]:
    """The account carrying a citizen ID, found through its blind index (the database holds
    no citizen ID in the clear). The search is audited, and answers with the ID masked."""
    async with ctx.db.begin() as session:
        found = await audited_reads.find_by_citizen_id(
            session, citizen_id, reader(user, ctx, request_id)
        )
    return [AccountFound.of(found)] if found else []


@router.get("/people", tags=PEOPLE, response_model=list[PersonSummary])
async def search_people(
    ctx: Ctx, q: Annotated[str, Query(min_length=2, max_length=200)]
) -> list[PersonSummary]:
    """Find a person by citizen ID (12 digits), BHXH code (10 digits) or full name."""
    async with ctx.db() as session:
        return [PersonSummary.of(a) for a in await accounts.search(session, q)]


@router.get("/people/{account_id}", tags=PEOPLE, response_model=PersonOut, responses=ACCOUNT_ERRORS)
async def get_person(account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId) -> PersonOut:
    """The account, its linked identities, its live sessions and its review cases (an audited
    read of the person's data)."""
    async with ctx.db.begin() as session:
        found = await audited_reads.person(
            session, ctx.refresh_tokens, account_id, reader(user, ctx, request_id),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
        )  # fmt: skip
    return PersonOut(
        **PersonSummary.of(found.account).model_dump(),
        identities=[LinkOut.of(link) for link in found.links],
        sessions=[SessionOut(**s.model_dump()) for s in found.sessions],
        cases=[CaseSummary.of(c) for c in found.cases],
    )


@router.post(
    "/people/{account_id}/citizen-id",
    tags=PEOPLE,
    response_model=RevealedCitizenId,
    responses=ACCOUNT_ERRORS,
)
async def reveal_person_citizen_id(
    account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId
) -> RevealedCitizenId:
    """The account's full citizen ID (empty if it has none); recorded in the trail."""
    async with ctx.db.begin() as session:
        shown = await audited_reads.account_citizen_id(
            session, account_id, reader(user, ctx, request_id)
        )
    return RevealedCitizenId(citizen_id=shown)


@router.post(
    "/people/{account_id}/end-sessions",
    tags=PEOPLE,
    response_model=SessionsEnded,
    responses=ACCOUNT_ERRORS,
)
async def end_person_sessions(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> SessionsEnded:
    """End every browser session and app installation of the person."""
    async with ctx.db.begin() as session:
        ended = await people.end_sessions(
            session, ctx.refresh_tokens, account_id, actor=f"staff:{user.username}",
            reason=body.reason, now=ctx.clock(), request_id=request_id,
        )  # fmt: skip
    return SessionsEnded(
        browser_sessions_ended=ended.browser, app_sessions_ended=ended.app_families
    )


async def _set_locked(
    ctx: Ctx, account_id: int, body: Reason, user: StaffUser, request_id: str, locked: bool
) -> PersonSummary:
    async with ctx.db.begin() as session:
        await people.set_locked(
            session, ctx.refresh_tokens, account_id, locked=locked,
            actor=f"staff:{user.username}", reason=body.reason, now=ctx.clock(),
            request_id=request_id,
        )  # fmt: skip
    async with ctx.db() as session:
        return PersonSummary.of(await accounts.get_account(session, account_id))


@router.post(
    "/people/{account_id}/lock", tags=PEOPLE, response_model=PersonSummary,
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def lock_person(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> PersonSummary:
    """Lock the account (every session ends now); the reason goes to the trail."""
    return await _set_locked(ctx, account_id, body, user, request_id, True)


@router.post(
    "/people/{account_id}/unlock", tags=PEOPLE, response_model=PersonSummary,
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def unlock_person(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> PersonSummary:
    """Unlock a locked account; the reason goes to the trail."""
    return await _set_locked(ctx, account_id, body, user, request_id, False)


@router.get(
    "/accounts/{account_id}/identities", tags=LINKS, response_model=list[LinkOut],
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def list_identities(
    account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId
) -> list[LinkOut]:
    """The VNeID identities linked to an account (an audited read of the person's data)."""
    async with ctx.db.begin() as session:
        links = await audited_reads.identities(session, account_id, reader(user, ctx, request_id))
        return [LinkOut.of(link) for link in links]
