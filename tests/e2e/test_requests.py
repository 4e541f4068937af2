"""The person's requests over real HTTP, app and staff, against the simulated VNeID: the
step-up challenge (RFC 9470), each kind from submission to done or refused, bad input."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Stack
from tests.support.flows import APP_REDIRECT_URI, AppPkce, AppRedirect, app_complete, query_of
from tests.support.http import AsyncClient
from tests.support.staff import PASSWORD, add_staff, code_now
from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account, HealthInsuranceCard
from vssid_broker.admin.models import StaffRole
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.housekeeping import purge
from vssid_broker.requests.facilities import quarter_start
from vssid_broker.requests.models import AgencyRequest, AgencyRequestEvent
from vssid_broker.vneid_sim.driver import sign_in_at_vneid

AN = "001085012345"  # Nguyễn Văn An, level 2, card in Hà Nội (01), phone 0912345678
ADMIN = "/admin/api/v1"
REQUESTS = "/api/v1/me/requests"


class App:
    """The VssID app of one person: its cookie jar at VNeID (the sign-in session) and tokens."""

    def __init__(self, client: httpx.AsyncClient, broker: str) -> None:
        self.client, self.broker = client, broker
        self.tokens: dict[str, Any] = {}

    async def sign_in(self, citizen_id: str = AN, **step_up: Any) -> httpx.Response:
        pkce = AppPkce.new()
        start = await self.client.post(
            f"{self.broker}/api/v1/auth/vneid/start",
            json={
                "redirect_uri": APP_REDIRECT_URI,
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
                **step_up,
            },
        )
        assert start.status_code == 200, start.text
        location = await sign_in_at_vneid(
            self.client, start.json()["authorization_url"], citizen_id
        )
        done = await app_complete(self.client, self.broker, AppRedirect(query_of(location), pkce))
        if done.status_code == 200:
            self.tokens = done.json()
        return done

    async def refresh(self) -> None:
        renewed = await self.client.post(
            f"{self.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"]},
        )
        assert renewed.status_code == 200, renewed.text
        self.tokens = renewed.json()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def submit(self, **body: Any) -> httpx.Response:
        return await self.client.post(f"{self.broker}{REQUESTS}", json=body, headers=self.auth)

    async def get(self, path: str = "") -> httpx.Response:
        return await self.client.get(f"{self.broker}{REQUESTS}{path}", headers=self.auth)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(
            f"{self.broker}{REQUESTS}{path}", json=body or {}, headers=self.auth
        )


async def staff_token(stack: Stack, username: str = "clerk") -> dict[str, str]:
    await add_staff(stack, username, StaffRole.REVIEWER)
    async with AsyncClient() as client:
        answer = await client.post(
            f"{stack.broker}{ADMIN}/token",
            json={"username": username, "password": PASSWORD, "otp": code_now(stack)},
        )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def rows(stack: Stack) -> int:
    return await stack.count(AgencyRequest) + await stack.count(AgencyRequestEvent)


async def decide(
    stack: Stack, staff: dict[str, str], reference: str, outcome: str, reason: str | None = None
) -> dict[str, Any]:
    async with AsyncClient(base_url=f"{stack.broker}{ADMIN}", headers=staff) as client:
        queued = await client.get(f"/requests/{reference}")
        assert queued.status_code == 200, queued.text
        claimed = await client.post(
            f"/requests/{reference}/claim", json={"version": queued.json()["version"]}
        )
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["status"] == "in_progress"
        decided = await client.post(
            f"/requests/{reference}/decide",
            json={"version": claimed.json()["version"], "outcome": outcome, "reason": reason},
        )
        assert decided.status_code == 200, decided.text
        result: dict[str, Any] = decided.json()
        return result


# --- step-up ------------------------------------------------------------------------------------
async def test_a_week_old_sign_in_meets_the_challenge_and_a_refresh_does_not_satisfy_it(
    stack: Stack,
) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        assert (await app.sign_in()).status_code == 200
        stack.clock.advance(7 * 24 * 3600)
        await app.refresh()  # a refreshed token, minted now, for a sign-in a week old

        refused = await app.submit(kind="health_card_reissue", reason="lost")

    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert "max_age=300" in challenge
    assert 'acr_values="LoA2"' in challenge
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "step_up_required"
    assert refused.json()["max_age"] == 300
    assert await rows(stack) == 0


async def test_a_step_up_sign_in_with_max_age_satisfies_it(stack: Stack) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        assert (await app.sign_in()).status_code == 200
        stack.clock.advance(7 * 24 * 3600)
        await app.refresh()
        assert (await app.submit(kind="health_card_reissue", reason="lost")).status_code == 401

        stack.clock.reset()  # the simulated VNeID keeps real time; the week is over
        # The app asks VNeID for a fresh sign-in, as the challenge told it.
        assert (await app.sign_in(max_age=0)).status_code == 200
        submitted = await app.submit(kind="health_card_reissue", reason="lost")

    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert re.fullmatch(r"YC-\d{4}-[0-9A-Z]{8}", submitted.json()["reference"])


async def test_a_password_sign_in_does_not_satisfy_it(stack: Stack) -> None:
    async with stack.db.begin() as session:
        account_id = await session.scalar(
            select(Account.id).where(Account.bhxh_code == "0112345678")
        )
        assert account_id is not None
        await passwords.set_password(session, account_id, "Mat-khau-2026", now=stack.clock())
    async with AsyncClient() as client:
        signed_in = await client.post(
            f"{stack.broker}/api/v1/auth/password",
            json={"identifier": "0112345678", "password": "Mat-khau-2026"},
        )
        assert signed_in.status_code == 200, signed_in.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        refused = await client.post(
            f"{stack.broker}{REQUESTS}",
            json={"kind": "health_card_reissue", "reason": "lost"},
            headers=headers,
        )
    assert refused.status_code == 401
    assert refused.json()["code"] == "step_up_required"
    assert await rows(stack) == 0


async def test_the_second_sign_in_at_vneid_needs_no_passcode_but_max_age_asks_again(
    stack: Stack,
) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        first_time = app.tokens["access_token"]
        # Without max_age, VNeID answers from its sign-in session: the consent page at once.
        pkce = AppPkce.new()
        start = await client.post(
            f"{stack.broker}/api/v1/auth/vneid/start",
            json={"redirect_uri": APP_REDIRECT_URI, "code_challenge": pkce.challenge,
                  "code_challenge_method": "S256"},
        )  # fmt: skip
        page = await client.get(start.json()["authorization_url"], follow_redirects=True)
        assert 'data-step="consent"' in page.text
        # With max_age=0 (or prompt=login) the passcode is asked again.
        for step_up in ({"max_age": 0}, {"prompt": "login"}):
            start = await client.post(
                f"{stack.broker}/api/v1/auth/vneid/start",
                json={"redirect_uri": APP_REDIRECT_URI, "code_challenge": pkce.challenge,
                      "code_challenge_method": "S256", **step_up},
            )  # fmt: skip
            assert (
                "max_age=0" in start.json()["authorization_url"]
                or "prompt=login" in (start.json()["authorization_url"])
            )
            page = await client.get(start.json()["authorization_url"], follow_redirects=True)
            assert 'data-step="login"' in page.text, step_up
    assert first_time


# --- each kind, submission to decision ----------------------------------------------------------
async def test_a_card_reissue_goes_from_submitted_to_done_with_its_history(stack: Stack) -> None:
    staff = await staff_token(stack)
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        submitted = await app.submit(kind="health_card_reissue", reason="lost")
        assert submitted.status_code == 201, submitted.text
        body = submitted.json()
        assert body["details"]["delivery_address"].startswith("Số 12 phố Hàng Bài")
        reference = body["reference"]

        again = await app.submit(kind="health_card_reissue", reason="damaged")
        assert again.status_code == 409
        assert again.json()["code"] == "request_already_open"

        decided = await decide(stack, staff, reference, "done")
        assert decided["status"] == "done"

        mine = await app.get(f"/{reference}")
        listed = await app.get()
    assert mine.json()["status"] == "done"
    assert [step["status"] for step in mine.json()["history"]] == [
        "submitted",
        "in_progress",
        "done",
    ]
    assert [item["reference"] for item in listed.json()] == [reference]
    async with stack.db() as session:
        audited = list(
            await session.scalars(
                select(AuditEvent.event_type)
                .where(AuditEvent.event_type.like("request.%"))
                .order_by(AuditEvent.id)
            )
        )
    assert audited == ["request.submitted", "request.claimed", "request.done"]


async def test_a_primary_care_change_in_the_window_is_done_and_changes_the_card(
    stack: Stack,
) -> None:
    staff = await staff_token(stack)
    with stack.broker_with(primary_care_change_window_days=92) as broker:  # always open
        async with AsyncClient() as client:
            app = App(client, broker)
            await app.sign_in()
            choices = await app.get("/facilities")
            assert {f["code"][:2] for f in choices.json()} == {"01"}
            elsewhere = await app.submit(kind="primary_care_change", facility_code="79-002")
            assert elsewhere.status_code == 422
            assert elsewhere.json()["code"] == "facility_not_in_province"
            submitted = await app.submit(kind="primary_care_change", facility_code="01-031")
            assert submitted.status_code == 201, submitted.text
            reference = submitted.json()["reference"]
    await decide(stack, staff, reference, "done")
    async with stack.db() as session:
        card = await session.scalar(
            select(HealthInsuranceCard).join(Account).where(Account.bhxh_code == "0112345678")
        )
    assert card is not None
    assert card.facility_code == "01-031"
    assert card.primary_care_facility == "Bệnh viện Đa khoa Đống Đa"


async def test_a_primary_care_change_outside_the_window_says_when_it_opens(stack: Stack) -> None:
    today = stack.clock().astimezone().date()
    days_in = (today - quarter_start(today)).days + 1
    if days_in == 1:
        pytest.skip("today opens a quarter: every window is open")
    with stack.broker_with(primary_care_change_window_days=days_in - 1) as broker:
        async with AsyncClient() as client:
            app = App(client, broker)
            await app.sign_in()
            refused = await app.submit(kind="primary_care_change", facility_code="01-031")
    assert refused.status_code == 422
    assert refused.json()["code"] == "primary_care_window_closed"
    assert (
        refused.json()["opens_on"]
        == (quarter_start(today) + timedelta(days=100)).replace(day=1).isoformat()
    )
    assert "quý" in refused.json()["title"]
    assert await rows(stack) == 0


async def test_a_phone_change_is_confirmed_by_the_code_sent_and_refused_by_staff(
    stack: Stack,
) -> None:
    staff = await staff_token(stack)
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        reference, code = await phone_change(app, stack, "0987000111")

        wrong = await app.post(
            f"/{reference}/confirm-phone-code", {"code": "000000" if code != "000000" else "1" * 6}
        )
        assert wrong.status_code == 422
        assert wrong.json()["code"] == "phone_code_wrong"
        confirmed = await app.post(f"/{reference}/confirm-phone-code", {"code": code})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "submitted"

        refused = await decide(
            stack, staff, reference, "refused", "Số điện thoại đã đăng ký cho tài khoản khác."
        )
        mine = await app.get(f"/{reference}")
    assert refused["status"] == "refused"
    assert mine.json()["refusal_reason"] == "Số điện thoại đã đăng ký cho tài khoản khác."
    async with stack.db() as session:
        phone = await session.scalar(select(Account.phone).where(Account.bhxh_code == "0112345678"))
    assert phone == "0912345678"  # refused: the record is unchanged


async def sent_code(client: httpx.AsyncClient, stack: Stack, phone: str) -> str:
    outbox = await client.get(f"{stack.broker}/demo/sms")
    found = re.search(rf"Đến {phone}.*?la (\d{{6}})", outbox.text, re.S)
    assert found, outbox.text
    return found.group(1)


async def phone_change(app: App, stack: Stack, new_phone: str) -> tuple[str, str]:
    """Ask for a new phone number: the request's reference and the code sent to the number."""
    submitted = await app.submit(kind="phone_change", new_phone=new_phone)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "awaiting_code"
    return submitted.json()["reference"], await sent_code(app.client, stack, new_phone)


async def test_a_phone_change_done_changes_the_number_and_an_expired_code_is_refused(
    stack: Stack,
) -> None:
    staff = await staff_token(stack)
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        reference, code = await phone_change(app, stack, "0987000222")
        confirmed = await app.post(f"/{reference}/confirm-phone-code", {"code": code})
        assert confirmed.status_code == 200, confirmed.text
        await decide(stack, staff, reference, "done")
        async with stack.db() as session:
            phone = await session.scalar(
                select(Account.phone).where(Account.bhxh_code == "0112345678")
            )
        assert phone == "0987000222"

        later, code = await phone_change(app, stack, "0987000333")
        stack.clock.advance(301)
        await app.refresh()  # the access token lives 300 s too
        expired = await app.post(f"/{later}/confirm-phone-code", {"code": code})
    assert expired.status_code == 422
    assert expired.json()["code"] == "phone_code_expired"
    assert not expired.json()["title"].isascii()


async def test_wrong_codes_up_to_the_limit_spend_the_code_even_for_the_right_one(
    stack: Stack,
) -> None:
    limit = stack.settings.phone_code_max_attempts
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        reference, code = await phone_change(app, stack, "0987000444")
        wrong_code = "000000" if code != "000000" else "111111"
        path = f"/{reference}/confirm-phone-code"
        wrong = [await app.post(path, {"code": wrong_code}) for _ in range(limit)]
        right_too_late = await app.post(path, {"code": code})
        still = await app.get(f"/{reference}")
    assert [answer.json()["code"] for answer in wrong] == ["phone_code_wrong"] * limit
    assert right_too_late.status_code == 422
    assert right_too_late.json()["code"] == "phone_code_expired"
    assert still.json()["status"] == "awaiting_code"  # never reached the agency's queue
    async with stack.db() as session:
        counted = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.event_type == AuditEventType.REQUEST_PHONE_CODE_WRONG)
        )
    assert counted == limit


async def test_the_same_request_sent_eight_times_at_once_is_one_request(stack: Stack) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        answers = await asyncio.gather(
            *(app.submit(kind="health_card_reissue", reason="lost") for _ in range(8))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 7, [answer.text for answer in answers]
    assert {answer.json()["code"] for answer in answers if answer.status_code == 409} == {
        "request_already_open"
    }
    assert await stack.count(AgencyRequest) == 1


async def test_purge_removes_requests_closed_past_retention_and_keeps_open_ones(
    stack: Stack,
) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        closed = (await app.submit(kind="health_card_reissue", reason="lost")).json()
        await app.post(f"/{closed['reference']}/cancel")
        kept = (await app.submit(kind="health_card_reissue", reason="damaged")).json()
    retention = timedelta(days=stack.settings.retain_closed_requests_days)
    for now, left in (
        (stack.clock() + retention - timedelta(days=1), {closed["reference"], kept["reference"]}),
        (stack.clock() + retention + timedelta(days=1), {kept["reference"]}),
    ):
        async with stack.db.begin() as session:
            await purge(session, now, stack.settings)
        async with stack.db() as session:
            references = set(await session.scalars(select(AgencyRequest.reference)))
            history = await session.scalar(
                select(func.count())
                .select_from(AgencyRequestEvent)
                .where(AgencyRequestEvent.request_id.not_in(select(AgencyRequest.id)))
            )
        assert references == left
        assert history == 0  # a purged request's history goes with it


# --- bad input, cancellation, staff races -------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"kind": "pension_advance"}, 422, "request_kind_unknown"),
        ({"kind": "health_card_reissue"}, 422, "request_invalid"),
        ({"kind": "phone_change", "new_phone": "12345"}, 422, "phone_number_invalid"),
        ({"kind": "phone_change", "new_phone": "0912345678"}, 422, "phone_number_invalid"),
    ],
)
async def test_bad_requests_are_refused_in_vietnamese_and_write_nothing(
    stack: Stack, body: dict[str, Any], status: int, code: str
) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        refused = await app.submit(**body)
    assert refused.status_code == status
    assert refused.json()["code"] == code
    assert not refused.json()["title"].isascii()
    assert await rows(stack) == 0


async def test_a_submitted_request_can_be_cancelled_but_not_once_claimed(stack: Stack) -> None:
    staff = await staff_token(stack)
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        first = (await app.submit(kind="health_card_reissue", reason="damaged")).json()
        cancelled = await app.post(f"/{first['reference']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        second = (await app.submit(kind="health_card_reissue", reason="damaged")).json()
        async with AsyncClient(base_url=f"{stack.broker}{ADMIN}", headers=staff) as admin:
            await admin.post(f"/requests/{second['reference']}/claim", json={"version": 1})
        too_late = await app.post(f"/{second['reference']}/cancel")
    assert too_late.status_code == 409
    assert too_late.json()["code"] == "request_not_cancellable"


async def test_of_two_staff_claiming_at_once_one_wins(stack: Stack) -> None:
    first_staff = await staff_token(stack, "clerk1")
    second_staff = await staff_token(stack, "clerk2")
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        reference = (await app.submit(kind="health_card_reissue", reason="lost")).json()[
            "reference"
        ]
    async with AsyncClient(base_url=f"{stack.broker}{ADMIN}") as admin:
        queue = await admin.get(
            "/requests", params={"kind": "health_card_reissue"}, headers=first_staff
        )
        assert [item["reference"] for item in queue.json()] == [reference]
        won = await admin.post(
            f"/requests/{reference}/claim", json={"version": 1}, headers=first_staff
        )
        lost = await admin.post(
            f"/requests/{reference}/claim", json={"version": 1}, headers=second_staff
        )
        deciding = await admin.post(
            f"/requests/{reference}/decide",
            json={"version": 2, "outcome": "refused"},
            headers=first_staff,
        )
    assert won.status_code == 200
    assert lost.status_code == 409
    assert lost.json()["code"] in ("request_changed", "request_assigned_elsewhere")
    assert deciding.status_code == 422
    assert deciding.json()["code"] == "refusal_reason_required"


async def test_the_export_holds_the_requests(stack: Stack) -> None:
    async with AsyncClient() as client:
        app = App(client, stack.broker)
        await app.sign_in()
        reference = (await app.submit(kind="health_card_reissue", reason="lost")).json()[
            "reference"
        ]
        export = await client.get(f"{stack.broker}/api/v1/me/export", headers=app.auth)
    held = export.json()["requests"]
    assert [item["reference"] for item in held] == [reference]
    assert held[0]["history"][0]["status"] == "submitted"
