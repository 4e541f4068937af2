"""The person's copy of their data, the consent recorded at the first link, and staff reads of
personal data through the admin API, each audited."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.admin.test_admin_api import Staff, bhxh_account_id, open_case, staff  # noqa: F401
from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking.models import LinkConsent, ReviewCase

AN, DUNG, EM, LAN = "001085012345", "031188004567", "092087007788", "040183002233"


async def app_login(stack: Stack, citizen_id: str) -> dict[str, str]:
    async with AsyncClient() as app:
        answer = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, citizen_id)
        )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def events(stack: Stack, event_type: str) -> list[AuditEvent]:
    async with stack.db() as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.event_type == event_type)
                .order_by(AuditEvent.id)
            )
        )


async def test_the_first_link_records_the_consent_with_the_claims_shared(stack: Stack) -> None:
    await app_login(stack, AN)
    await app_login(stack, AN)  # a second login records nothing new
    async with stack.db() as session:
        consents = list(await session.scalars(select(LinkConsent)))
    assert len(consents) == 1
    [consent] = consents
    claims = stack.settings
    assert {claims.vneid_citizen_id_claim, claims.vneid_name_claim} <= set(consent.claims)
    assert not {"iss", "aud", "nonce", "acr"} & set(consent.claims)
    assert consent.notice_version == stack.settings.privacy_notice_version
    assert consent.purpose == "link_vneid_to_vssid" and consent.withdrawn_at is None
    [recorded] = await events(stack, "consent.recorded")
    assert recorded.account_id == consent.account_id and AN not in str(recorded.details)


async def test_the_export_holds_everything_about_the_person_and_is_audited(stack: Stack) -> None:
    headers = await app_login(stack, AN)
    an = await bhxh_account_id(stack, "0112345678")
    async with stack.db.begin() as session:  # a staff action about An, named by role only
        audit.record(
            session, event_type=AuditEventType.PERSONAL_DATA_READ, outcome="account_links",
            now=stack.clock(), actor="staff:alice", account_id=an,
        )  # fmt: skip
    async with AsyncClient() as app:
        exported = await app.get(f"{stack.broker}/api/v1/me/export", headers=headers)
    assert exported.status_code == 200, exported.text
    held = exported.json()
    assert held["account"]["citizen_id"] == AN and held["account"]["bhxh_code"] == "0112345678"
    assert held["insurance_periods"] and held["health_card"]["card_code"]
    assert [link["method"] for link in held["links"]] == ["citizen_id_match"]
    assert [c["purpose"] for c in held["consents"]] == ["link_vneid_to_vssid"]
    assert [s["channel"] for s in held["sessions"]] == ["app"]
    actors = {e["actor"] for e in held["audit_events"]}
    assert "staff" in actors and "staff:alice" not in actors
    [export_event] = await events(stack, "personal_data.exported")
    assert export_event.account_id == an


async def test_the_export_wants_the_persons_token(stack: Stack) -> None:
    async with AsyncClient() as app:
        answer = await app.get(f"{stack.broker}/api/v1/me/export")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_staff_find_an_account_by_citizen_id_and_the_search_is_audited(
    staff: Staff,  # noqa: F811
    stack: Stack,
) -> None:
    found = await staff.get(staff.reviewer, "/accounts", citizen_id=AN)
    assert found.status_code == 200, found.text
    [account] = found.json()
    assert account["citizen_id"] == "001******345" and account["full_name"] == "Nguyễn Văn An"
    assert AN not in found.text
    assert (await staff.get(staff.reviewer, "/accounts", citizen_id="099999999999")).json() == []
    bad = await staff.get(staff.reviewer, "/accounts", citizen_id="00108501234")
    assert bad.status_code == 422
    reads = await events(stack, "personal_data.read")
    assert [(r.outcome, r.actor, r.account_id) for r in reads] == [
        ("account_search", "staff:reviewer", account["account_id"]),
        ("account_search", "staff:reviewer", None),
    ]


async def test_staff_reading_case_evidence_and_links_is_audited(
    staff: Staff,  # noqa: F811
    stack: Stack,
) -> None:
    case_id = await open_case(stack, DUNG)
    case = (await staff.get(staff.reviewer, f"/cases/{case_id}")).json()
    candidates = [c["account_id"] for c in case["candidates"]]
    await staff.get(staff.reviewer, f"/accounts/{candidates[0]}/identities")
    reads = await events(stack, "personal_data.read")
    assert [(r.outcome, r.account_id, r.details.get("case_id")) for r in reads] == [
        *[("case_evidence", account_id, case_id) for account_id in candidates],
        ("account_links", candidates[0], None),
    ]
    assert all(r.actor == "staff:reviewer" for r in reads)


async def app_attempt(stack: Stack, citizen_id: str) -> httpx.Response:
    async with AsyncClient() as app:
        return await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, citizen_id)
        )


async def test_the_export_holds_the_refused_login_the_review_case_and_the_ended_session(
    staff: Staff,  # noqa: F811
    stack: Stack,
) -> None:
    # Dung's record has no citizen ID: her first login is refused while staff review the case.
    refused = await app_attempt(stack, DUNG)
    assert refused.json()["code"] == "link_under_review"
    async with stack.db() as session:
        case = (await session.scalars(select(ReviewCase))).one()
    dung = await bhxh_account_id(stack, "3112345670")
    approve = {"account_id": dung, "version": 1, "reason": "giấy tờ khớp"}
    assert (await staff.post(staff.reviewer, f"/cases/{case.id}/approve", approve)).is_success
    confirm = {"version": 2}
    assert (await staff.post(staff.approver, f"/cases/{case.id}/confirm", confirm)).is_success
    first, second = await app_login(stack, DUNG), await app_login(stack, DUNG)
    async with AsyncClient() as app:  # the first installation is signed out from the second
        [ending] = [
            s
            for s in (await app.get(f"{stack.broker}/api/v1/me/sessions", headers=second)).json()
            if not s["current"]
        ]
        ended = await app.delete(
            f"{stack.broker}/api/v1/me/sessions/{ending['id']}", headers=second
        )
        assert ended.status_code == 204
        assert (await app.get(f"{stack.broker}/api/v1/me", headers=first)).status_code == 401
        stack.clock.advance(seconds=60)
        held = (await app.get(f"{stack.broker}/api/v1/me/export", headers=second)).json()

    assert held["format"] == "vssid-broker-personal-data/2"
    [their_case] = held["review_cases"]
    assert their_case | {"opened_at": None, "decided_at": None} == {
        "opened_at": None,
        "provider": case.provider,
        "subject": case.subject,
        "citizen_id": DUNG,
        "full_name": "Phạm Thị Dung",
        "birth_date": case.birth_date.isoformat(),
        "reason": "name_birthdate_match",
        "status": "approved",
        "decided_at": None,
        "decided_by": "staff",
        "decision_reason": "giấy tờ khớp",
        "linked_to_this_account": True,
        "proven_by_password": False,
    }
    happened = [(e["event_type"], e["outcome"]) for e in held["audit_events"]]
    assert happened[:4] == [
        ("review_case.opened", "name_birthdate_match"),
        ("login", "link_under_review"),
        ("review_case.decided", "proposed"),
        ("review_case.decided", "approved"),
    ]
    opened = held["audit_events"][0]
    assert opened["details"]["case_id"] == case.id
    assert "candidate_account_ids" not in opened["details"]
    assert {e["actor"] for e in held["audit_events"][:4]} == {"system", "staff"}
    assert [(s["ended_because"], s["ended_at"] is not None) for s in held["sessions"]] == [
        (None, False),  # the second installation, newest first, still signed in
        ("revoked", True),
    ]


async def test_the_export_holds_nothing_of_another_persons_refusals_or_cases(
    stack: Stack,
) -> None:
    headers = await app_login(stack, AN)
    # Others: a locked account's refused login, a review case of two look-alike records.
    assert (await app_attempt(stack, LAN)).json()["code"] == "account_not_active"
    assert (await app_attempt(stack, EM)).json()["code"] == "link_under_review"
    async with stack.db() as session:
        theirs = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.account_id.is_(None), AuditEvent.event_type != "staff.sign_in"
                )
            )
        )
    assert {(e.event_type, e.outcome) for e in theirs} >= {
        ("login", "account_not_active"),
        ("login", "link_under_review"),
        ("review_case.opened", "name_birthdate_match"),
    }
    async with AsyncClient() as app:
        held = (await app.get(f"{stack.broker}/api/v1/me/export", headers=headers)).json()
    assert held["review_cases"] == []
    assert {e["event_type"] for e in held["audit_events"]} == {
        "link.created",
        "consent.recorded",
        "login",
    }
    assert all(e["outcome"] != "account_not_active" for e in held["audit_events"])
    for masked in (mask_citizen_id(LAN), mask_citizen_id(EM)):
        assert masked not in str(held)
