"""Staff management in the admin API (admins only): list, create, change."""

from __future__ import annotations

from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.admin.schemas import StaffChangeIn, StaffCreate, StaffOut
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.params import RowId
from vssid_broker.web.staff.common import STAFF, STAFF_ERRORS, api_router

router = api_router(*staff.MANAGES_STAFF)


def staff_out(user: StaffUser) -> StaffOut:
    return StaffOut(
        id=user.id,
        username=user.username,
        role=user.role,
        bound_to_own_account=user.account_id is not None,
        second_factor_enrolled=user.totp_enrolled_at is not None,
        disabled=user.disabled_at is not None,
        locked_until=user.locked_until,
        created_at=user.created_at,
    )


@router.get("/staff", tags=STAFF, response_model=list[StaffOut])
async def list_staff(ctx: Ctx) -> list[StaffOut]:
    """Every staff user, with role and second-factor state."""
    async with ctx.db() as session:
        return [staff_out(u) for u in await staff.list_staff(session)]


@router.post("/staff", tags=STAFF, response_model=StaffOut, status_code=201, responses=STAFF_ERRORS)
async def create_staff(body: StaffCreate, user: Staff, ctx: Ctx, request_id: RequestId) -> StaffOut:
    """Create a staff user; they enrol their second factor at their first console sign-in."""
    now = ctx.clock()
    async with ctx.db.begin() as session:
        created = await staff.create_staff_user(
            session, username=body.username, password=body.password,
            role=StaffRole(body.role), now=now, citizen_id=body.citizen_id,
        )  # fmt: skip
        staff.record_created(
            session, created, actor=f"staff:{user.username}", now=now, request_id=request_id
        )
        return staff_out(created)


@router.post("/staff/{staff_id}", tags=STAFF, response_model=StaffOut, responses=STAFF_ERRORS)
async def change_staff(
    staff_id: RowId, body: StaffChangeIn, user: Staff, ctx: Ctx, request_id: RequestId
) -> StaffOut:
    """Disable, enable, reset the password, reset the second factor, or change the role."""
    async with ctx.db.begin() as session:
        target = await staff.get_staff(session, staff_id)
        await staff.change_staff(
            session, target, body.change, actor=f"staff:{user.username}", now=ctx.clock(),
            request_id=request_id, password=body.password,
            role=StaffRole(body.role) if body.role else None,
        )  # fmt: skip
        return staff_out(target)
