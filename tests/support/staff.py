"""Staff users for tests: created through the service, second factor enrolled with a known
secret (as the demo does), and the authenticator's code for the broker's own clock."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp

from tests.conftest import Stack
from vssid_broker.admin.models import StaffRole
from vssid_broker.admin.second_factor import enrol_with_secret
from vssid_broker.admin.service import create_staff_user

PASSWORD = "correct horse battery staple"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
"""Every test staff member's authenticator secret (each has their own last-used step)."""


@dataclass(frozen=True)
class StaffMember:
    username: str
    role: StaffRole
    password: str = PASSWORD
    secret: str = TOTP_SECRET


def code_now(stack: Stack, secret: str = TOTP_SECRET) -> str:
    """What the authenticator shows at the broker's (movable) clock."""
    return pyotp.TOTP(secret).at(stack.clock())


async def add_staff(
    stack: Stack,
    username: str,
    role: StaffRole,
    *,
    account_id: int | None = None,
    enrolled: bool = True,
) -> StaffMember:
    async with stack.db.begin() as session:
        user = await create_staff_user(
            session,
            username=username,
            password=PASSWORD,
            role=role,
            now=stack.clock(),
            account_id=account_id,
        )
        if enrolled:
            await enrol_with_secret(session, user, TOTP_SECRET, stack.ctx.keys, stack.clock())
    return StaffMember(username, role)
