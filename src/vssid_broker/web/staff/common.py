"""What the admin API's route modules share: the problem documents of its answers, a router per
capability (the role check is a dependency of the router, so a new route cannot forget it), and
who the signed-in staff member is to the services they call; and the CSV download the console
serves too."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from vssid_broker.admin.audited_reads import Reader
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.context import BrokerContext
from vssid_broker.linking.decisions import Decider
from vssid_broker.web.deps import staff_with_role

PREFIX = "/admin/api/v1"
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def problem(description: str) -> dict[str, Any]:
    return {"description": description, **PROBLEM}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing, invalid or expired staff token (`invalid_staff_token`)"),
    403: problem("the staff role does not allow this (`staff_role_required`)"),
    422: problem("invalid request (`invalid_request`)"),
}
CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("`staff_role_required`, `own_account_case` or `own_decision`"),
    404: problem("no such case (`case_not_found`)"),
    409: problem(
        "`case_already_decided` (decided or changed since you read it), "
        "`case_assigned_elsewhere`, `already_linked` or `account_not_active`"
    ),
    422: problem("`account_not_a_candidate` or `invalid_request`"),
}
ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: problem("no such account (`account_not_found`)"),
    409: problem("`account_status_unchanged`"),
}
STAFF_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("`staff_role_required` or `staff_self_change`"),
    404: problem("`staff_user_not_found`"),
    409: problem("`staff_user_exists`"),
    422: problem("`weak_password`, `staff_citizen_id_unknown` or `invalid_request`"),
}
CASES: list[str | Enum] = ["admin: review cases"]
PEOPLE: list[str | Enum] = ["admin: people"]
LINKS: list[str | Enum] = ["admin: links"]
STAFF: list[str | Enum] = ["admin: staff"]


def api_router(*roles: StaffRole) -> APIRouter:
    """A router of the admin API; with `roles`, only staff with one of them pass."""
    return APIRouter(
        prefix=PREFIX, responses=ERRORS, dependencies=[staff_with_role(*roles)] if roles else []
    )


def joined(*parts: APIRouter) -> APIRouter:
    """One router of a module's capability routers, their routes in order. Each route already
    carries its full path, role check and problem documents: the routes are taken as they are,
    not included (see `app.py` for why)."""
    router = APIRouter()
    for part in parts:
        router.routes.extend(part.routes)
    return router


def decider(user: StaffUser) -> Decider:
    return Decider(user.username, user.account_id)


def reader(user: StaffUser, ctx: BrokerContext, request_id: str) -> Reader:
    return Reader(f"staff:{user.username}", request_id, ctx.clock())


def csv_download(text: str) -> Response:
    """The audit trail's CSV export as a download, on either face."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
