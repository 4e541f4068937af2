"""No identifier, personal datum or credential reaches a log, even at DEBUG, even in faults.

Every login path and the fault cases run with the root logger at DEBUG through the broker's
own handler (`logging_setup.build_handler`); then the whole output is searched for every citizen ID,
BHXH code, name and birth date involved, for every token, code, state, password and OTP the
test saw.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect, browser_login
from tests.support.http import AsyncClient
from vssid_broker import logging_setup
from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sealing import blind_index
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

DEMO = json.loads(
    (Path(logging_setup.__file__).parent / "seeding" / "data" / "demo_accounts.json").read_text()
)
PASSWORD = "Mat-khau-2026"
VNEID_PASSCODE, VNEID_OTP = "Vneid@123", "123456"
AN, KHOA, HA = "001085012345", "046075001122", "001310004321"
LEVEL_1, NO_ACCOUNT, LOOKALIKE, LOCKED = (
    "079190123456",
    "048095000111",
    "031188004567",
    "040183002233",
)
VNEID_LOCKED, TWINS = "038192003344", "092087007788"


ERROR_CODE = re.compile(r"^[a-z_]+$")  # `code` of a problem answer: meant to be logged
CREDENTIAL_FIELDS = frozenset(
    {"code", "state", "access_token", "refresh_token", "proof_ticket", "vssid_session"}
)


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.secrets: set[str] = {PASSWORD, VNEID_PASSCODE}

    def saw(self, *values: Any) -> None:
        """Remember credentials the test met (in answers: the credential fields only), to look
        for them in the output."""
        for value in values:
            if isinstance(value, dict):
                self.saw(*(v for k, v in value.items() if k in CREDENTIAL_FIELDS))
            elif isinstance(value, str) and len(value) >= 8 and not ERROR_CODE.match(value):
                self.secrets.add(value)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def debug_log() -> Iterator[Captured]:
    captured = Captured()
    root = logging.getLogger()
    guarded = logging_setup.build_handler("text", captured.stream)
    levels = {name: logging.getLogger(name).level for name in ("", "sqlalchemy", "httpcore")}
    root.addHandler(guarded)
    root.setLevel(logging.DEBUG)
    logging_setup.guard_library_loggers()
    try:
        yield captured
    finally:
        root.removeHandler(guarded)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def personal_data() -> set[str]:
    """Every demo person's identifiers, name and birth date, in the forms they travel in."""
    found: set[str] = set()
    for person in DEMO:
        born = date.fromisoformat(person["birth_date"])
        found |= {person["bhxh_code"], person["full_name"], born.isoformat()}
        found |= {born.strftime("%Y%m%d"), born.strftime("%d/%m/%Y")}
        if person["citizen_id"]:
            found.add(person["citizen_id"])
        if person["phone"]:
            found.add(person["phone"])
    return found


async def drive_every_login_path(stack: Stack, captured: Captured) -> None:
    async with AsyncClient() as browser:
        callback = await browser_login(browser, stack.broker, AN)
        assert callback.status_code == 302, callback.text
        captured.saw({name: browser.cookies[name] for name in browser.cookies})
        assert (await browser.get(f"{stack.broker}/account")).status_code == 200
    async with AsyncClient() as app:
        redirect = await app_until_redirect(app, stack.broker, KHOA)
        captured.saw(redirect.params, redirect.pkce.verifier)
        tokens = (await app_complete(app, stack.broker, redirect)).json()
        captured.saw(tokens)
        refreshed = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        captured.saw(refreshed.json())
        # The rotated token again: reuse detection, the family ends.
        await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        for citizen in (LEVEL_1, NO_ACCOUNT, LOCKED, TWINS, HA):
            redirect = await app_until_redirect(app, stack.broker, citizen)
            captured.saw(redirect.params)
            captured.saw((await app_complete(app, stack.broker, redirect)).json())
        redirect = await app_until_redirect(app, stack.broker, LOOKALIKE)
        refused = (await app_complete(app, stack.broker, redirect)).json()
        captured.saw(redirect.params, refused)
        if "proof_ticket" in refused:
            await app.post(
                f"{stack.broker}/api/v1/auth/vneid/prove",
                json={
                    "proof_ticket": refused["proof_ticket"],
                    "identifier": "031188004567",
                    "password": PASSWORD,
                },
            )
        for identifier in ("0112345678", AN, "00108501234", "not-a-code"):
            await app.post(
                f"{stack.broker}/api/v1/auth/password",
                json={"identifier": identifier, "password": PASSWORD},
            )
    async with AsyncClient() as browser:
        start = await browser.get(f"{stack.broker}/auth/vneid/login")
        with contextlib.suppress(Exception):  # VNeID refuses; only the logs matter here
            await sign_in_at_vneid(browser, start.headers["location"], VNEID_LOCKED)


async def drive_provider_faults(stack: Stack, captured: Captured) -> None:
    faults = ("token_http_500", "token_non_json", "id_token_bad_signature", "id_token_wrong_aud")
    async with AsyncClient() as app:
        for fault in (*faults, "authorize_server_error", "jwks_http_500"):
            await stack.fault(fault)
            redirect = await app_until_redirect(app, stack.broker, AN)
            captured.saw(redirect.params, redirect.pkce.verifier)
            captured.saw((await app_complete(app, stack.broker, redirect)).json())


async def drive_a_database_error_mid_login(stack: Stack, captured: Captured) -> None:
    """The INSERT of a review case fails in the database, with the person's name and birth
    date among its parameters; so does the link's, with the VNeID subject among them."""

    def broken_insert(
        _conn: object, _cursor: object, statement: str, parameters: Any, _ctx: object, _many: bool
    ) -> tuple[str, Any]:
        # Wherever the INSERT stands: on PostgreSQL the link's is inside a WITH (its consent).
        for table in ("review_cases", "federated_links"):
            statement = re.sub(
                rf"INSERT INTO {table}\b",
                "INSERT INTO no_such_table",
                statement,
                count=1,
                flags=re.I,
            )
        return statement, parameters

    engine = stack.ctx.engine.sync_engine
    event.listen(engine, "before_cursor_execute", broken_insert, retval=True)
    try:
        for citizen in (LOOKALIKE, AN):
            # A new client each time: the server closes the connection of a failed request.
            async with AsyncClient() as app:
                redirect = await app_until_redirect(app, stack.broker, citizen)
                captured.saw(redirect.params)
                failed = await app_complete(app, stack.broker, redirect)
                assert failed.status_code == 500
    finally:
        event.remove(engine, "before_cursor_execute", broken_insert)


async def vneid_subjects(stack: Stack) -> set[str]:
    async with stack.db() as session:
        links = set(await session.scalars(select(FederatedLink.subject)))
        cases = set(await session.scalars(select(ReviewCase.subject)))
    return links | cases


async def test_no_identifier_or_credential_reaches_the_log_at_debug(
    stack: Stack, debug_log: Captured
) -> None:
    async with stack.db.begin() as session:
        account = await session.scalar(
            select(Account).where(Account.citizen_id_index == blind_index(AN))
        )
        assert account is not None
        await passwords.set_password(session, account.id, PASSWORD, now=stack.clock())

    await drive_a_database_error_mid_login(stack, debug_log)
    await drive_every_login_path(stack, debug_log)
    await drive_provider_faults(stack, debug_log)

    subjects = await vneid_subjects(stack)
    assert subjects  # the logins made links and cases: their subjects are looked for too
    output = debug_log.text
    # The database error was logged, with its traceback (its kind, not its text).
    assert "no_such_table" in output or "sqlstate=42P01" in output
    assert "Traceback" in output
    assert "code=vneid_level_insufficient" in output  # refusal codes stay readable
    leaks = sorted(
        value
        for value in personal_data() | debug_log.secrets | subjects | {VNEID_OTP}
        if value in output
    )
    assert leaks == [], "\n".join(
        line for line in output.splitlines() if any(leak in line for leak in leaks)
    )[:3000]


SIM_CITIZENS = json.loads(
    (Path(logging_setup.__file__).parent / "vneid_sim" / "data" / "citizens.json").read_text()
)
SUBJECTS = {citizen["citizen_id"]: citizen["sub"] for citizen in SIM_CITIZENS}

PERSONAL_TABLES = {
    # table: the citizen whose login writes a row of it
    "federated_links": AN,
    "link_consents": AN,
    "refresh_tokens": AN,
    "audit_events": AN,
    "review_cases": LOOKALIKE,
}


@contextlib.asynccontextmanager
async def every_write_refused(stack: Stack, table: str) -> Any:
    """A constraint that refuses every new row of `table`: on PostgreSQL a CHECK, whose error
    quotes the whole refused row (`DETAIL: Failing row contains (…)`); on SQLite a trigger."""
    postgres = stack.settings.database_url.startswith("postgresql")
    add, drop = (
        (
            f"ALTER TABLE {table} ADD CONSTRAINT ck_forced_failure CHECK (false) NOT VALID",
            f"ALTER TABLE {table} DROP CONSTRAINT ck_forced_failure",
        )
        if postgres
        else (
            f"CREATE TRIGGER ck_forced_failure BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: forced'); END",
            "DROP TRIGGER ck_forced_failure",
        )
    )
    async with stack.db.begin() as session:
        await session.execute(text(add))
    try:
        yield
    finally:
        async with stack.db.begin() as session:
            await session.execute(text(drop))


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("table", sorted(PERSONAL_TABLES))
async def test_a_refused_row_is_never_quoted_in_the_log(
    stack: Stack, table: str, log_format: str
) -> None:
    """A database error's text (PostgreSQL's refused row, SQLAlchemy's parameters) stays out
    of both log formats, message and traceback; its kind and constraint stay readable."""
    stream = io.StringIO()
    root = logging.getLogger()
    handler = logging_setup.build_handler(log_format, stream)
    root.addHandler(handler)
    citizen = PERSONAL_TABLES[table]
    try:
        async with every_write_refused(stack, table), AsyncClient() as app:
            redirect = await app_until_redirect(app, stack.broker, citizen)
            failed = await app_complete(app, stack.broker, redirect)
    finally:
        root.removeHandler(handler)
    assert failed.status_code == 500
    output = stream.getvalue()
    assert "Traceback" in output
    if stack.settings.database_url.startswith("postgresql"):
        assert "sqlstate=23514" in output and "constraint=ck_forced_failure" in output
    person = next(p for p in SIM_CITIZENS if p["citizen_id"] == citizen)
    born = date.fromisoformat(person["birthdate"])
    personal = {SUBJECTS[citizen], person["full_name"], born.isoformat(), "Failing row"}
    leaks = sorted(value for value in personal if value in output)
    assert leaks == [], output[:3000]
