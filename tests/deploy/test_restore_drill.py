"""The restore drill of docs/deploy.md, "Restore", on this machine: a base backup and a WAL
archive of a fresh PostgreSQL, the broker's schema and audited changes, a restore point, later
changes, then point-in-time recovery into a new data directory: the audit chain verifies and
the later changes are gone (deploy/drill/restore_drill.py, run as an operator would)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRILL = Path(__file__).resolve().parents[2] / "deploy" / "drill" / "restore_drill.py"


@pytest.mark.timeout(240)
def test_a_point_in_time_recovery_brings_back_a_verified_chain_and_nothing_later(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL run of the suite: it needs PostgreSQL's server binaries")
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"):
        pytest.fail("the restore drill needs PostgreSQL's server package (pg_basebackup, initdb)")
    bin_dir = str(Path(sys.executable).parent)
    drilled = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(DRILL)],
        capture_output=True,
        text=True,
        timeout=230,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        check=False,
    )
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    summary = json.loads(drilled.stdout.strip().splitlines()[-1])
    assert summary["audit_verify"].startswith("audit chain verified")
    assert summary["staff_restored"] == ["drill-before-1", "drill-before-2"]
    # The change after the restore point was on the source and did not come back.
    assert summary["audit_events_on_source"] > summary["audit_events_restored"]
    assert summary["audit_events_restored"] == summary["audit_events_at_restore_point"]
