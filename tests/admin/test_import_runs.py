"""The accounts import runs in the admin API (admins only), over real HTTP."""

from __future__ import annotations

from pathlib import Path

from tests.accounts.account_files import person, write_csv
from tests.admin.test_admin_api import Staff, assert_problem
from tests.admin.test_admin_api import staff as staff
from tests.conftest import Stack
from vssid_broker.admin.account_import import AccountImport


async def import_file(stack: Stack, path: Path) -> int | None:
    importer = AccountImport(
        engine=stack.db.kw["bind"],  # the test's own engine (the broker's runs on its loop)
        sessions=stack.db,
        refresh=stack.ctx.refresh_tokens,
        actor="operator:tester",
        clock=stack.clock,
    )
    with path.open("rb") as source:
        summary = await importer.run(
            source, file_name=path.name, report_path=path.with_suffix(".rejects.csv")
        )
    return summary.run_id


async def test_admins_list_the_import_runs_newest_first_and_reviewers_may_not(
    staff: Staff, stack: Stack, tmp_path: Path
) -> None:
    rows = [person(i) for i in range(3)] + [person(3, status="paused")]
    first = await import_file(stack, write_csv(tmp_path / "first.csv", rows))
    second = await import_file(stack, write_csv(tmp_path / "second.csv", rows[:2]))

    listed = await staff.get(staff.admin, "/import-runs")
    refused = await staff.get(staff.reviewer, "/import-runs")

    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [run["id"] for run in body["items"][:2]] == [second, first]
    newest, older = body["items"][:2]
    assert (older["file_name"], older["status"], older["added"]) == ("first.csv", "completed", 3)
    assert older["rejected_by_reason"] == {"status.unknown": 1}
    assert (newest["unchanged"], newest["actor"]) == (2, "operator:tester")
    assert len(newest["file_sha256"]) == 64
    assert_problem(refused, 403, "staff_role_required")
