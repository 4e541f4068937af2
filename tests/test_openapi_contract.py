"""The OpenAPI document is the truth: schemathesis calls every operation of /openapi.json with
generated requests — without credentials, as a signed-in person, and as a staff admin — and
checks that nothing answers 5xx and that every answer is one the document declares (status,
content type, body schema, `Allow` on a 405), and that malformed requests are refused.

Run as the `schemathesis` command against the test broker, so CI runs it on SQLite and on
PostgreSQL with the rest of the suite. The number of examples per operation is bounded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.admin.test_admin_api import sign_in
from tests.conftest import Stack
from tests.sessions.test_refresh import signed_in_app
from tests.support.http import AsyncClient
from tests.support.staff import add_staff
from vssid_broker.admin.models import StaffRole

EXAMPLES_PER_OPERATION = 5
"""Enough to reach every documented answer; small, so the suite stays fast on both databases."""
EXCLUDED_CHECKS = "positive_data_acceptance"
"""That check expects a 2xx for any well-formed request; here a well-formed refresh token,
login state or case that does not exist is rightly refused (RFC 6749 §5.2: 400)."""
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
pytestmark = pytest.mark.timeout(300)  # as long as the run itself may take (below)


def run_schemathesis(stack: Stack, tmp_path: Path, *options: str) -> None:
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else shutil.which("schemathesis")),
        "run",
        f"{stack.broker}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        EXCLUDED_CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--no-color",
        *options,
    ]
    ran = subprocess.run(  # noqa: S603 - our own test tool
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]


def test_every_operation_answers_as_documented_without_credentials(
    stack: Stack, tmp_path: Path
) -> None:
    run_schemathesis(stack, tmp_path)


@pytest.mark.parametrize(
    ("who", "operations"), [("person", "^/api/v1/me"), ("staff admin", "^/admin/api/v1/(?!token)")]
)
async def test_every_operation_answers_as_documented_with_credentials(
    stack: Stack, tmp_path: Path, who: str, operations: str
) -> None:
    """Only the operations the credential is for: the others were called above."""
    if who == "person":
        async with AsyncClient() as app:
            token = (await signed_in_app(app, stack))["access_token"]
    else:
        await add_staff(stack, "admin", StaffRole.ADMIN)  # second factor enrolled
        signed_in = await sign_in(stack, "admin")
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
    run_schemathesis(
        stack,
        tmp_path,
        "--header",
        f"Authorization: Bearer {token}",
        "--include-path-regex",
        operations,
    )
