"""POST /admin/api/v1/token: a staff member signs in to the admin API (the story:
`login.staff`)."""

from __future__ import annotations

from fastapi import Request

from vssid_broker.admin.schemas import StaffSignIn, StaffTokenOut
from vssid_broker.login import staff as staff_sign_in
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.rate_limiting import password_attempt
from vssid_broker.web.staff.common import STAFF, api_router, problem

router = api_router()


@router.post(
    "/token",
    tags=STAFF,
    response_model=StaffTokenOut,
    responses={
        401: problem("`invalid_credentials` or `invalid_second_factor`"),
        403: problem("`second_factor_not_enrolled`: enrol at /admin first"),
        429: problem("`staff_sign_in_locked`"),
    },
)
async def sign_in(
    body: StaffSignIn, request: Request, ctx: Ctx, request_id: RequestId
) -> StaffTokenOut:
    """Staff sign-in with username, password and the authenticator's code; returns a
    short-lived bearer token. Wrong passwords and wrong codes count towards the lockout, and
    every attempt passes the rate limits of password sign-ins."""
    async with password_attempt(request, ctx, realm="staff", identifier=body.username):
        token, user = await staff_sign_in.sign_in_for_api(
            ctx, body.username, body.password, body.otp, request_id=request_id
        )
    return StaffTokenOut(
        access_token=token, expires_in=ctx.settings.staff_token_ttl_seconds, role=user.role
    )
