"""The accounts import runs in the console (admins only): the newest runs and their counts."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import account_import
from vssid_broker.web.deps import Ctx
from vssid_broker.web.staff.console.base import SignedIn, console_router, page

router = console_router()
RUN_STATUS_LABELS = {
    "running": "Đang chạy",
    "completed": "Hoàn tất",
    "failed": "Dừng vì lỗi tệp",
    "interrupted": "Bị ngắt",
    "dry_run": "Chạy thử",
}


@router.get("/import-runs", response_class=HTMLResponse)
async def import_runs_page(request: Request, ctx: Ctx, console: SignedIn) -> Response:
    console.require(account_import.SEES_IMPORT_RUNS)
    async with ctx.db() as session:
        runs, total = await account_import.list_runs(session, limit=50)
    return page(
        request, "import_runs.html", console, runs=runs, total=total,
        run_status_labels=RUN_STATUS_LABELS,
    )  # fmt: skip
