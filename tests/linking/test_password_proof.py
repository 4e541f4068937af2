"""Rule 3's proof: after a VNeID login lands on look-alike records, the person proves one of
them by its password. Single use, bound to the case, never a link to a non-candidate."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Stack
from tests.linking.test_rules import EM
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account
from vssid_broker.linking import proof
from vssid_broker.linking import service as linking
from vssid_broker.linking.models import FederatedLink, ReviewCase

EM_CITIZEN = "092087007788"
PASSWORD = "Mat-khau-cua-Em"


async def account_id(stack: Stack, bhxh_code: str) -> int:
    async with stack.db() as session:
        return (
            await session.execute(select(Account.id).where(Account.bhxh_code == bhxh_code))
        ).scalar_one()


async def give_password(stack: Stack, bhxh_code: str) -> int:
    found = await account_id(stack, bhxh_code)
    async with stack.db.begin() as session:
        await passwords.set_password(session, found, PASSWORD, now=stack.clock())
    return found


async def ticket_from_app_login(stack: Stack) -> str:
    async with AsyncClient() as app:
        refused = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, EM_CITIZEN)
        )
    assert refused.status_code == 403
    assert refused.json()["code"] == "link_under_review"
    assert refused.json()["proof_expires_in"] == stack.settings.link_proof_ttl_seconds
    return str(refused.json()["proof_ticket"])


async def prove(stack: Stack, ticket: str, identifier: str, password: str) -> httpx.Response:
    async with AsyncClient() as app:
        return await app.post(
            f"{stack.broker}/api/v1/auth/vneid/prove",
            json={"proof_ticket": ticket, "identifier": identifier, "password": password},
        )


async def the_case(stack: Stack) -> ReviewCase:
    async with stack.db() as session:
        [case] = list(await session.scalars(select(ReviewCase)))
    return case


async def test_a_proof_is_filed_on_the_case_for_staff_and_the_ticket_is_spent(
    stack: Stack,
) -> None:
    second_em = await give_password(stack, "9212345602")
    ticket = await ticket_from_app_login(stack)
    proved = await prove(stack, ticket, "9212345602", PASSWORD)
    assert (proved.status_code, proved.json()) == (200, {"outcome": "filed_for_review"})
    case = await the_case(stack)
    assert (case.status, case.proven_account_id, case.proof_hash) == ("pending", second_em, None)
    assert await stack.count(FederatedLink) == 0

    again = await prove(stack, ticket, "9212345602", PASSWORD)
    assert (again.status_code, again.json()["code"]) == (400, "proof_invalid")


@pytest.mark.parametrize(
    ("bhxh_code", "password", "status", "code"),
    [
        ("9212345601", "wrong password", 401, "invalid_credentials"),
        ("0112345678", PASSWORD, 403, "proof_not_a_candidate"),  # An's own, right password
    ],
)
async def test_a_failed_proof_files_nothing_and_spends_the_ticket(
    stack: Stack, bhxh_code: str, password: str, status: int, code: str
) -> None:
    await give_password(stack, "9212345601")
    await give_password(stack, "0112345678")
    ticket = await ticket_from_app_login(stack)
    refused = await prove(stack, ticket, bhxh_code, password)
    assert refused.status_code == status
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code
    case = await the_case(stack)
    assert (case.status, case.proven_account_id) == ("pending", None)
    right = await prove(stack, ticket, "9212345601", PASSWORD)
    assert right.json()["code"] == "proof_invalid"


async def test_a_ticket_expires_and_dies_with_a_decision(stack: Stack) -> None:
    await give_password(stack, "9212345601")
    ticket = await ticket_from_app_login(stack)
    stack.clock.advance(stack.settings.link_proof_ttl_seconds + 1)
    assert (await prove(stack, ticket, "9212345601", PASSWORD)).json()["code"] == "proof_invalid"

    stack.clock.reset()
    ticket = await ticket_from_app_login(stack)  # the same case, a new ticket
    async with stack.db.begin() as session:
        case = await session.scalar(select(ReviewCase))
        assert case is not None
        case.status = "rejected"
    assert (await prove(stack, ticket, "9212345601", PASSWORD)).json()["code"] == "proof_invalid"


async def test_where_configured_a_proof_links_at_once(stack: Stack) -> None:
    first_em = await give_password(stack, "9212345601")
    async with stack.db.begin() as session:
        outcome = await linking.resolve(session, EM, now=stack.clock(), request_id="t")
        assert isinstance(outcome, linking.NeedsReview)
        ticket = proof.issue_proof_ticket(outcome.case, now=stack.clock(), ttl_seconds=60)
    settings = stack.settings.model_copy(update={"link_on_password_proof": True})
    verdict = await passwords.verify(
        stack.db, "9212345601", PASSWORD, now=stack.clock(), unknown=stack.ctx.rate_limits
    )
    async with stack.db.begin() as session:
        proved = await proof.prove_ownership(
            session,
            ticket=ticket,
            verdict=verdict,
            now=stack.clock(),
            settings=settings,
            request_id="t",
            unknown=stack.ctx.rate_limits,
        )
    assert isinstance(proved, proof.ProofLinked) and proved.account.id == first_em
    async with stack.db() as session:
        link = await session.scalar(select(FederatedLink))
    assert link is not None
    assert (link.subject, link.account_id, link.method) == (EM.subject, first_em, "password_proof")
    case = await the_case(stack)
    assert (case.status, case.decided_account_id, case.decided_by) == (
        "approved",
        first_em,
        "proof",
    )
    async with stack.db.begin() as session:  # the identity's next login is rule 1
        again = await linking.resolve(session, EM, now=stack.clock(), request_id="t")
    assert isinstance(again, linking.Linked) and again.account.id == first_em
