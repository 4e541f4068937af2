"""The audit trail in the admin API, for auditors and admins: read it, export it as CSV (the
export is itself recorded: `admin.audited_reads`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response

from vssid_broker.admin import audited_reads
from vssid_broker.admin import service as staff
from vssid_broker.admin.audited_reads import AuditFilters
from vssid_broker.admin.schemas import AuditEventOut, Page
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.params import CaseIdInAudit, Moment, Offset, RowIdFilter
from vssid_broker.web.staff.common import api_router, csv_download, reader

router = api_router(*staff.READS_AUDIT)


@router.get("/audit", tags=["admin: audit"], response_model=Page[AuditEventOut])
async def audit_trail(
    ctx: Ctx,
    account_id: RowIdFilter = None,
    case_id: CaseIdInAudit = None,
    actor: Annotated[str | None, Query(max_length=100, description="e.g. staff:alice")] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[AuditEventOut]:
    """Auditors and admins: the audit trail, newest first."""
    filters = AuditFilters(account_id, case_id, actor or None, since, until)
    rows, total = await audited_reads.search(ctx.db, filters, limit=limit, offset=offset)
    return Page(items=[AuditEventOut.of(e) for e in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/audit.csv",
    tags=["admin: audit"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the filtered trail as CSV"}},
)
async def audit_csv(
    ctx: Ctx,
    user: Staff,
    request_id: RequestId,
    account_id: RowIdFilter = None,
    case_id: CaseIdInAudit = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    since: Moment = None,
    until: Moment = None,
) -> Response:
    """Auditors and admins: the filtered trail as CSV (at most 10 000 rows); the export itself
    is recorded."""
    filters = AuditFilters(account_id, case_id, actor or None, since, until)
    return csv_download(
        await audited_reads.export_csv(ctx.db, filters, reader(user, ctx, request_id))
    )
