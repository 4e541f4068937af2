"""The life of a request: submitted by the person (after a fresh VNeID sign-in, checked by the
caller), followed by them, claimed and decided by staff.

    submit → awaiting_code (a new phone: confirmed by the code sent to it) → submitted
           → in_progress (claimed by one staff member) → done | refused (with a reason)
    cancel: by the person, while awaiting_code or submitted.

Every rule is checked before anything is written, so a refused request writes nothing. One
open request per kind is the database's rule (a partial unique index): two submissions racing
end in one request. Every staff step is an optimistic compare-and-set on `version`, as review
cases are decided (`linking/decisions.py`): of two staff acting at once, one wins, the other
gets 409. Each step is added to the request's history and to the audit trail in the same
transaction (`steps`). This module is the person's side; the staff's is `processing`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.accounts.models import Account, HealthInsuranceCard
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings
from vssid_broker.errors.requests import (
    DeliveryAddressMissing,
    FacilityNotInProvince,
    HealthCardRequired,
    PhoneCodeExpired,
    PhoneCodeNotExpected,
    PhoneCodeWrong,
    PhoneNumberInvalid,
    PrimaryCareWindowClosed,
    RequestAlreadyOpen,
    RequestInvalid,
    RequestNotCancellable,
    RequestNotFound,
)
from vssid_broker.opaque_tokens import hash_token, new_token
from vssid_broker.requests import steps
from vssid_broker.requests.facilities import (
    change_window,
    facilities_of,
    province_of_card,
)
from vssid_broker.requests.models import (
    OPEN_STATUSES,
    AgencyRequest,
    AgencyRequestEvent,
    PhoneCode,
    RequestDraft,
    RequestKind,
    RequestStatus,
)
from vssid_broker.requests.schemas import RequestIn
from vssid_broker.requests.sms import SmsSender

VIETNAM = timezone(timedelta(hours=7))
"""The window's days are Vietnam's days, whatever the server's clock zone."""
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
PHONE_PATTERN = "0[35789][0-9]{8}"
PERSON = "person"


@dataclass(frozen=True)
class Requester:
    """The person asking, and what the audit trail records of the call."""

    account_id: int
    request_id: str


def new_reference(now: datetime) -> str:
    tail = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"YC-{now.year}-{tail}"


def phone_code_hash(key: bytes, reference: str, code: str) -> str:
    """Keyed, and bound to the request: six digits are too few to store as a plain hash."""
    return hmac.new(key, f"{reference}:{code}".encode(), hashlib.sha256).hexdigest()


# --- the person's side --------------------------------------------------------------------------
async def submit(
    session: AsyncSession,
    body: RequestIn,
    who: Requester,
    *,
    now: datetime,
    settings: Settings,
    sms: SmsSender,
    phone_code_key: bytes,
) -> AgencyRequest:
    """Check every rule, then write the request, its first history step and its audit event;
    for a new phone number also its code, sent last (a sender that fails writes nothing)."""
    account = await session.get(Account, who.account_id)
    if account is None:
        raise RequestNotFound("the account is gone")
    kind = steps.known_kind(body.kind)
    await _check_none_open(session, who.account_id, kind)
    details = await _details(session, kind, body, account, now, settings)
    status = (
        RequestStatus.AWAITING_CODE if kind is RequestKind.PHONE_CHANGE else RequestStatus.SUBMITTED
    )
    row = AgencyRequest(
        reference=new_reference(now),
        account_id=who.account_id,
        kind=kind,
        status=status,
        details=details,
        version=1,
        created_at=now,
        submitted_at=now if status is RequestStatus.SUBMITTED else None,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as error:
        # Another submission of the same kind won the race (uq_agency_requests_open_kind).
        raise RequestAlreadyOpen(f"an open {kind} request exists") from error
    steps.add_history(session, row, now, PERSON)
    steps.record_audit(session, AuditEventType.REQUEST_SUBMITTED, row, now, who.request_id, PERSON)
    if kind is RequestKind.PHONE_CHANGE:
        code = f"{secrets.randbelow(10**6):06d}"
        session.add(
            PhoneCode(
                request_id=row.id,
                code_hash=phone_code_hash(phone_code_key, row.reference, code),
                expires_at=now + timedelta(seconds=settings.phone_code_ttl_seconds),
                failed_attempts=0,
            )
        )
        minutes = max(1, settings.phone_code_ttl_seconds // 60)
        await sms.send(
            details["new_phone"],
            f"VssID: ma xac nhan doi so dien thoai la {code}, hieu luc {minutes} phut. "
            "Khong chia se ma nay cho bat ky ai.",
        )
    return row


async def _check_none_open(session: AsyncSession, account_id: int, kind: RequestKind) -> None:
    open_one = await session.scalar(
        select(AgencyRequest.reference).where(
            AgencyRequest.account_id == account_id,
            AgencyRequest.kind == kind,
            AgencyRequest.status.in_(OPEN_STATUSES),
        )
    )
    if open_one is not None:
        raise RequestAlreadyOpen(f"request {open_one} of kind {kind} is still open")


async def _details(
    session: AsyncSession,
    kind: RequestKind,
    body: RequestIn,
    account: Account,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    match kind:
        case RequestKind.HEALTH_CARD_REISSUE:
            card = await card_of(session, account.id)
            if body.reason is None:
                raise RequestInvalid("reason is required: lost, damaged or details_wrong")
            address = (body.delivery_address or "").strip() or card.holder_address
            if not address:
                raise DeliveryAddressMissing("no delivery address given and none on record")
            return {"reason": body.reason, "delivery_address": address}
        case RequestKind.PRIMARY_CARE_CHANGE:
            card = await card_of(session, account.id)
            window = change_window(
                now.astimezone(VIETNAM).date(), settings.primary_care_change_window_days
            )
            if not window.contains(now.astimezone(VIETNAM).date()):
                raise PrimaryCareWindowClosed(
                    f"outside the change window; the next opens {window.opens_on}",
                    opens_on=window.opens_on,
                    closes_on=window.closes_on,
                )
            province = province_of_card(card.card_code, card.facility_code)
            chosen = {f.code: f for f in facilities_of(province)}.get(body.facility_code or "")
            if chosen is None:
                raise FacilityNotInProvince("facility_code is not one of the province's")
            if chosen.code == card.facility_code:
                raise RequestInvalid("the chosen facility is the one already registered")
            return {
                "facility_code": chosen.code,
                "facility_name": chosen.name,
                "previous_facility": card.primary_care_facility,
            }
        case RequestKind.PHONE_CHANGE:
            phone = (body.new_phone or "").strip().replace(" ", "")
            if not _is_mobile_number(phone) or phone == account.phone:
                raise PhoneNumberInvalid("new_phone is not a mobile number or is the current one")
            return {"new_phone": phone}


def _is_mobile_number(phone: str) -> bool:
    return re.fullmatch(PHONE_PATTERN, phone) is not None


async def card_of(session: AsyncSession, account_id: int) -> HealthInsuranceCard:
    card = await session.scalar(
        select(HealthInsuranceCard).where(HealthInsuranceCard.account_id == account_id)
    )
    if card is None:
        raise HealthCardRequired("the account has no health-insurance card on record")
    return card


async def confirm_phone_code(
    session: AsyncSession,
    reference: str,
    code: str,
    who: Requester,
    *,
    now: datetime,
    settings: Settings,
    phone_code_key: bytes,
) -> AgencyRequest:
    """The code sent to the new number, typed back: the request reaches the agency's queue.
    A wrong code counts against `VSSID_PHONE_CODE_MAX_ATTEMPTS` (the one thing a refusal
    writes: without it six digits could be guessed); at the limit the code is spent."""
    row = await get_own(session, who.account_id, reference)
    if row.status != RequestStatus.AWAITING_CODE:
        raise PhoneCodeNotExpected(f"request {reference} is {row.status}")
    held = await session.get(PhoneCode, row.id, with_for_update=True)
    if (
        held is None
        or held.expires_at <= now
        or held.failed_attempts >= settings.phone_code_max_attempts
    ):
        raise PhoneCodeExpired("the code expired or was spent by wrong attempts")
    expected = phone_code_hash(phone_code_key, row.reference, code)
    if not hmac.compare_digest(held.code_hash, expected):
        held.failed_attempts += 1
        steps.record_audit(
            session, AuditEventType.REQUEST_PHONE_CODE_WRONG, row, now, who.request_id, PERSON
        )
        raise PhoneCodeWrong("the code does not match")
    await session.delete(held)
    await steps.move(
        session,
        row,
        now,
        PERSON,
        who.request_id,
        AuditEventType.REQUEST_PHONE_CONFIRMED,
        expected_status=RequestStatus.AWAITING_CODE,
        status=RequestStatus.SUBMITTED,
        submitted_at=now,
    )
    return row


@asynccontextmanager
async def counting_wrong_codes(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """The transaction to confirm a phone code in. A wrong code is refused, yet its count and
    audit line must stay: the refusal is raised only after they are committed. Rolled back with
    the refusal, as any other refusal is, the count never reached the limit and six digits
    could be tried until guessed."""
    wrong: PhoneCodeWrong | None = None
    async with sessions.begin() as session:
        try:
            yield session
        except PhoneCodeWrong as refused:
            wrong = refused
    if wrong is not None:
        raise wrong


async def cancel(
    session: AsyncSession, reference: str, who: Requester, *, now: datetime
) -> AgencyRequest:
    row = await get_own(session, who.account_id, reference)
    if row.status not in (RequestStatus.AWAITING_CODE, RequestStatus.SUBMITTED):
        raise RequestNotCancellable(f"request {reference} is {row.status}")
    await steps.move(
        session,
        row,
        now,
        PERSON,
        who.request_id,
        AuditEventType.REQUEST_CANCELLED,
        expected_status=RequestStatus(row.status),
        status=RequestStatus.CANCELLED,
        closed_at=now,
        unassigned=True,
    )
    return row


async def get_own(session: AsyncSession, account_id: int, reference: str) -> AgencyRequest:
    """The person's own request by reference; another person's is as unknown as a made-up one."""
    row = await session.scalar(
        select(AgencyRequest).where(
            AgencyRequest.reference == reference, AgencyRequest.account_id == account_id
        )
    )
    if row is None:
        raise RequestNotFound(f"no request {reference[:30]!r} of this account")
    return row


async def list_own(session: AsyncSession, account_id: int) -> list[AgencyRequest]:
    return list(
        await session.scalars(
            select(AgencyRequest)
            .where(AgencyRequest.account_id == account_id)
            .order_by(AgencyRequest.created_at.desc(), AgencyRequest.id.desc())
        )
    )


async def history(session: AsyncSession, request_id: int) -> list[AgencyRequestEvent]:
    return list(
        await session.scalars(
            select(AgencyRequestEvent)
            .where(AgencyRequestEvent.request_id == request_id)
            .order_by(AgencyRequestEvent.at, AgencyRequestEvent.id)
        )
    )


# --- drafts (browser, step-up) ------------------------------------------------------------------
DRAFT_TTL_SECONDS = 900
"""Long enough to sign in again at VNeID; a draft nobody came back for is purged."""


def keep_draft(
    session: AsyncSession, account_id: int, fields: dict[str, str], *, now: datetime
) -> str:
    """Keep a form's fields for the account; the returned key goes into a cookie."""
    key = new_token()
    session.add(
        RequestDraft(
            draft_hash=hash_token(key),
            account_id=account_id,
            fields=fields,
            expires_at=now + timedelta(seconds=DRAFT_TTL_SECONDS),
        )
    )
    return key


async def take_draft(
    session: AsyncSession, account_id: int, key: str | None, *, now: datetime
) -> dict[str, str] | None:
    """The kept fields, once, for the same account only; None when gone or someone else's."""
    if not key:
        return None
    taken = await session.scalar(
        delete(RequestDraft)
        .where(
            RequestDraft.draft_hash == hash_token(key),
            RequestDraft.account_id == account_id,
            RequestDraft.expires_at > now,
        )
        .returning(RequestDraft.fields)
    )
    return {str(k): str(v) for k, v in taken.items()} if isinstance(taken, dict) else None


# --- retention ----------------------------------------------------------------------------------
async def purge_closed(session: AsyncSession, *, before: datetime) -> int:
    """Requests closed before `before`, with their history (cascade); see docs/privacy.md."""
    result = await session.execute(
        delete(AgencyRequest).where(
            AgencyRequest.closed_at.is_not(None), AgencyRequest.closed_at < before
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def purge_expired_drafts(session: AsyncSession, *, now: datetime) -> int:
    result = await session.execute(delete(RequestDraft).where(RequestDraft.expires_at < now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def window_today(now: datetime, settings: Settings) -> tuple[date, date, bool]:
    """The primary-care change window as the forms show it: opens, closes, open today."""
    today = now.astimezone(VIETNAM).date()
    window = change_window(today, settings.primary_care_change_window_days)
    return window.opens_on, window.closes_on, window.contains(today)
