"""Linking rule 3's proof: after a VNeID login that matched records only on name and birth
date, the app may let the person prove one candidate is theirs by its BHXH code (or citizen ID)
and password. The proof is filed on the review case for staff, or links at once where
`link_on_password_proof` allows it.

The ticket is bound to the pending case, hence to its (issuer, subject) and citizen ID; it is
an opaque token stored hashed, single use, minutes long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings
from vssid_broker.linking import consent
from vssid_broker.linking.models import FederatedLink, ReviewCase, ReviewReason, ReviewStatus
from vssid_broker.opaque_tokens import hash_token, new_token
from vssid_broker.passwords import PasswordVerdict, UnknownIdentifierLockout


def proof_allowed(case: ReviewCase) -> bool:
    return case.reason == ReviewReason.NAME_BIRTHDATE_MATCH and case.status == ReviewStatus.PENDING


def issue_proof_ticket(case: ReviewCase, *, now: datetime, ttl_seconds: int) -> str:
    """A one-time ticket bound to this pending case, hence to its (issuer, subject) and
    citizen ID. A newer login's ticket replaces the older one; only the hash is stored."""
    ticket = new_token()
    case.proof_hash = hash_token(ticket)
    case.proof_expires_at = now + timedelta(seconds=ttl_seconds)
    return ticket


@dataclass(frozen=True)
class ProofLinked:
    account: Account


@dataclass(frozen=True)
class ProofFiled:
    case: ReviewCase


@dataclass(frozen=True)
class ProofRefused:
    reason: str
    """`proof_invalid` (unknown, used, expired or decided), `not_a_candidate`,
    `already_linked`, or the password check's outcome (`invalid_credentials`, `locked`,
    `account_not_active`)."""


ProofOutcome = ProofLinked | ProofFiled | ProofRefused


async def prove_ownership(
    session: AsyncSession,
    *,
    ticket: str,
    verdict: PasswordVerdict,
    now: datetime,
    settings: Settings,
    request_id: str | None,
    unknown: UnknownIdentifierLockout,
) -> ProofOutcome:
    """Rule 3's proof, with the password already checked (`passwords.verify`, outside the
    transaction). The ticket is spent first, whatever follows (single use: a wrong password
    costs a new VNeID login as well as a lockout count). Writes into `session`; the
    caller commits even a refusal, so the spent ticket and the failure count stay."""
    case = await session.scalar(
        update(ReviewCase)
        .where(
            ReviewCase.proof_hash == hash_token(ticket),
            ReviewCase.proof_expires_at > now,
            ReviewCase.status == ReviewStatus.PENDING,
        )
        .values(proof_hash=None, proof_expires_at=None)
        .returning(ReviewCase)
        .execution_options(synchronize_session=False)
    )
    if case is None:
        return ProofRefused("proof_invalid")
    checked = await passwords.check(session, verdict, now=now, settings=settings, unknown=unknown)
    match checked:
        case passwords.SignedIn(account):
            pass
        case passwords.NotActive():
            return ProofRefused("account_not_active")
        case passwords.Locked() | passwords.Failed(_, True):
            return ProofRefused("locked")
        case _:
            return ProofRefused("invalid_credentials")
    if account.id not in case.candidate_account_ids:
        # Knowing some account's password proves nothing about this identity's records.
        return ProofRefused("not_a_candidate")
    details: dict[str, Any] = {"case_id": case.id, "provider": case.provider}
    if not settings.link_on_password_proof:
        case.proven_account_id = account.id
        audit.record(session, event_type=AuditEventType.REVIEW_CASE_PROOF, outcome="filed", now=now,
                     account_id=account.id, request_id=request_id, **details)  # fmt: skip
        return ProofFiled(case)
    try:
        async with session.begin_nested():
            case.proven_account_id = account.id
            case.status = ReviewStatus.APPROVED
            case.version += 1
            case.decided_account_id, case.decided_by, case.decided_at = account.id, "proof", now
            case.decision_reason = "password proof (VSSID_LINK_ON_PASSWORD_PROOF)"
            session.add(
                FederatedLink(
                    account_id=account.id,
                    provider=case.provider,
                    subject=case.subject,
                    citizen_id=case.citizen_id,
                    method="password_proof",
                    linked_by="system",
                    linked_at=now,
                )
            )
    except IntegrityError:
        return ProofRefused("already_linked")
    audit.record(session, event_type=AuditEventType.LINK_CREATED, outcome="password_proof", now=now,
                 account_id=account.id, request_id=request_id, **details)  # fmt: skip
    consent.record(session, account_id=account.id, provider=case.provider,
                   terms=consent.Terms.of_review_case(settings), now=now,
                   request_id=request_id)  # fmt: skip
    return ProofLinked(account)
