"""The accounts import runs in the admin API (admins only): what was loaded, when, by whom."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from vssid_broker.admin import account_import
from vssid_broker.admin.schemas import ImportRunOut, Page
from vssid_broker.web.deps import Ctx
from vssid_broker.web.params import Offset
from vssid_broker.web.staff.common import api_router

router = api_router(*account_import.SEES_IMPORT_RUNS)


@router.get("/import-runs", tags=["admin: import runs"], response_model=Page[ImportRunOut])
async def import_runs(
    ctx: Ctx, limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Offset = 0
) -> Page[ImportRunOut]:
    """Admins: the runs of `vssid-broker accounts import`, newest first, with their counts."""
    async with ctx.db() as session:
        runs, total = await account_import.list_runs(session, limit=limit, offset=offset)
    return Page(items=[ImportRunOut.of(r) for r in runs], total=total, limit=limit, offset=offset)
