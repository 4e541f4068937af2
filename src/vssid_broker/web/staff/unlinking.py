"""Admins remove a link between a VNeID identity and an account, in the admin API (the rule:
`linking.unlinking`)."""

from __future__ import annotations

from vssid_broker.admin import service as staff
from vssid_broker.admin.schemas import Unlink, UnlinkedOut
from vssid_broker.linking import unlinking
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.params import RowId
from vssid_broker.web.staff.common import LINKS, api_router, problem

router = api_router(*staff.UNLINKS)


@router.post(
    "/accounts/{account_id}/identities/{link_id}/unlink",
    tags=LINKS,
    response_model=UnlinkedOut,
    responses={404: problem("`link_not_found`")},
)
async def unlink_identity(
    account_id: RowId, link_id: RowId, body: Unlink, user: Staff, ctx: Ctx, request_id: RequestId
) -> UnlinkedOut:
    """Admins only: remove a link and revoke the account's refresh tokens and browser sessions."""
    async with ctx.db.begin() as session:
        result = await unlinking.unlink(
            session,
            account_id=account_id,
            link_id=link_id,
            actor=f"staff:{user.username}",
            reason=body.reason,
            now=ctx.clock(),
            request_id=request_id,
            refresh=ctx.refresh_tokens,
        )
    return UnlinkedOut(
        link_id=result.link_id,
        app_sessions_ended=result.app_sessions_ended,
        browser_sessions_ended=result.browser_sessions_ended,
    )
