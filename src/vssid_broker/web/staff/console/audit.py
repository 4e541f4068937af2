"""The audit trail in the console, for auditors and admins: filtered pages, and the CSV export
(itself recorded: `admin.audited_reads`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import audited_reads
from vssid_broker.admin import service as staff
from vssid_broker.admin.audited_reads import AuditFilters
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.rendering import VIETNAM_TIME
from vssid_broker.web.staff.common import csv_download
from vssid_broker.web.staff.console.audit_words import in_words
from vssid_broker.web.staff.console.base import SignedIn, console_router, page

router = console_router()


def _audit_filters(
    account_id: str, case_id: str, actor: str, since: str, until: str
) -> AuditFilters:
    def day(value: str, *, end: bool = False) -> datetime | None:
        """A date from the form's date field, as the start of that day in Vietnam, where the
        page shows every time (for `until`, the start of the next day: the day is included)."""
        try:
            start = datetime.fromisoformat(value).replace(tzinfo=VIETNAM_TIME) if value else None
        except ValueError:
            return None
        return start + timedelta(days=1) if start and end else start

    # The console asks for a staff member's user name; the trail names them `staff:<name>`.
    username = actor.strip().removeprefix("staff:")
    return AuditFilters(
        account_id=int(account_id) if account_id.isdigit() else None,
        case_id=int(case_id) if case_id.isdigit() else None,
        actor=f"staff:{username}" if username else None,
        since=day(since),
        until=day(until, end=True),
    )


AuditQuery = Annotated[str, Query(max_length=100)]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    account_id: AuditQuery = "",
    case_id: AuditQuery = "",
    actor: AuditQuery = "",
    since: AuditQuery = "",
    until: AuditQuery = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    console.require(staff.READS_AUDIT)
    raw = {"account_id": account_id, "case_id": case_id, "actor": actor, "since": since,
           "until": until}  # fmt: skip
    rows, total = await audited_reads.search(
        ctx.db, _audit_filters(**raw), limit=50, offset=(page_number - 1) * 50
    )
    return page(
        request, "audit.html", console, events=[(e, in_words(e)) for e in rows], total=total,
        filters=raw, page_number=page_number, pages=max(1, -(-total // 50)),
        page_url=lambda n: "/admin/audit?" + urlencode({**raw, "page": n}),
        csv_url="/admin/audit.csv?" + urlencode(raw),
    )  # fmt: skip


@router.get("/audit.csv")
async def audit_csv(
    ctx: Ctx,
    console: SignedIn,
    request_id: RequestId,
    account_id: AuditQuery = "",
    case_id: AuditQuery = "",
    actor: AuditQuery = "",
    since: AuditQuery = "",
    until: AuditQuery = "",
) -> Response:
    console.require(staff.READS_AUDIT)
    filters = _audit_filters(account_id, case_id, actor, since, until)
    return csv_download(
        await audited_reads.export_csv(ctx.db, filters, console.reader(ctx, request_id))
    )
