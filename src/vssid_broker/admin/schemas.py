"""Request and response bodies of the admin API. Citizen IDs leave only masked."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from vssid_broker.accounts.models import Account, ImportRun
from vssid_broker.audit.models import AuditEvent
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.linking.review import WHY, CandidateEvidence
from vssid_broker.sessions.schemas import SessionView

T = TypeVar("T")


class StaffSignIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    otp: str = Field(
        min_length=6,
        max_length=32,
        description="the authenticator's 6-digit code (or an unused recovery code)",
    )


class StaffTokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    role: str


class CaseSummary(BaseModel):
    id: int
    status: str
    reason: str
    citizen_id: str = Field(description="masked: province code and last three digits")
    full_name: str
    candidate_count: int
    version: int
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    assigned_to: str | None
    confirmed_by: str | None

    @classmethod
    def of(cls, case: ReviewCase) -> CaseSummary:
        return cls(
            id=case.id,
            status=case.status,
            reason=case.reason,
            citizen_id=mask_citizen_id(case.citizen_id),
            full_name=case.full_name,
            candidate_count=len(case.candidate_account_ids),
            version=case.version,
            created_at=case.created_at,
            decided_at=case.decided_at,
            decided_by=case.decided_by,
            assigned_to=case.assigned_to,
            confirmed_by=case.confirmed_by,
        )


class CasePage(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int
    counts: dict[str, int] = Field(description="cases per status, whatever the filters")
    target_hours: int = Field(description="how long a case may wait (VSSID_REVIEW_TARGET_HOURS)")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class VneidClaims(BaseModel):
    """What VNeID verified, minimised to what a reviewer compares."""

    provider: str
    subject: str
    citizen_id: str
    full_name: str
    birth_date: date


class AccountFound(BaseModel):
    """An account found by citizen ID, as staff see it (the ID masked)."""

    account_id: int
    bhxh_code: str
    citizen_id: str = Field(description="masked: province code and last three digits")
    full_name: str
    birth_date: date
    status: str

    @classmethod
    def of(cls, account: Account) -> AccountFound:
        return cls(
            account_id=account.id,
            bhxh_code=account.bhxh_code,
            citizen_id=mask_citizen_id(account.citizen_id or ""),
            full_name=account.full_name,
            birth_date=account.birth_date,
            status=account.status,
        )


class CandidateOut(BaseModel):
    account_id: int
    bhxh_code: str
    citizen_id: str | None
    full_name: str
    birth_date: date
    status: str
    linked_to_another_identity: bool
    citizen_id_comparison: Literal["same", "missing", "different"]
    full_name_matches: bool
    birth_date_matches: bool

    @classmethod
    def of(cls, found: CandidateEvidence, case: ReviewCase) -> CandidateOut:
        return cls(
            **PersonSummary.of(found.account).model_dump(),
            linked_to_another_identity=found.linked_subject not in (None, case.subject),
            citizen_id_comparison=found.citizen_id,
            full_name_matches=found.full_name_matches,
            birth_date_matches=found.birth_date_matches,
        )


class CaseDetail(CaseSummary):
    why: str
    vneid: VneidClaims
    candidates: list[CandidateOut]
    decided_account_id: int | None
    decision_reason: str | None
    proven_account_id: int | None = Field(
        description="rule 3: the candidate whose password the person proved, if any"
    )

    @classmethod
    def detail(cls, case: ReviewCase, found: list[CandidateEvidence]) -> CaseDetail:
        return cls(
            **CaseSummary.of(case).model_dump(),
            why=WHY.get(case.reason, case.reason),  # type: ignore[call-overload]
            vneid=VneidClaims(
                provider=case.provider,
                subject=case.subject,
                citizen_id=mask_citizen_id(case.citizen_id),
                full_name=case.full_name,
                birth_date=case.birth_date,
            ),
            candidates=[CandidateOut.of(f, case) for f in found],
            decided_account_id=case.decided_account_id,
            decision_reason=case.decision_reason,
            proven_account_id=case.proven_account_id,
        )


class Approve(BaseModel):
    account_id: int = Field(ge=1, le=2**63 - 1, description="the candidate account to link")
    version: int = Field(
        ge=0, le=2**31 - 1, description="the case version you reviewed (optimistic locking)"
    )
    reason: str | None = Field(default=None, max_length=1000)


class Reject(BaseModel):
    version: int = Field(
        ge=0, le=2**31 - 1, description="the case version you reviewed (optimistic locking)"
    )
    reason: str = Field(min_length=3, max_length=1000)


class Confirm(BaseModel):
    version: int = Field(description="the case version you reviewed (optimistic locking)")
    reason: str | None = Field(default=None, max_length=1000)


class Assign(BaseModel):
    username: str | None = Field(
        default=None,
        max_length=64,
        description="who works on the case; yourself to claim it, null to release it",
    )


class Reason(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class RevealedCitizenId(BaseModel):
    citizen_id: str = Field(description="the full 12 digits; this reading is audited")


class PersonSummary(BaseModel):
    account_id: int
    bhxh_code: str
    citizen_id: str | None = Field(description="masked")
    full_name: str
    birth_date: date
    status: str

    @classmethod
    def of(cls, account: Account) -> PersonSummary:
        return cls(
            account_id=account.id,
            bhxh_code=account.bhxh_code,
            citizen_id=mask_citizen_id(account.citizen_id) if account.citizen_id else None,
            full_name=account.full_name,
            birth_date=account.birth_date,
            status=account.status,
        )


# `SessionView` under the name the published API document gives it (no docstring: a
# docstring would become the schema's description).
class SessionOut(SessionView):
    pass


class PersonOut(PersonSummary):
    identities: list[LinkOut]
    sessions: list[SessionOut]
    cases: list[CaseSummary]


class SessionsEnded(BaseModel):
    browser_sessions_ended: int
    app_sessions_ended: int


class StaffOut(BaseModel):
    id: int
    username: str
    role: str
    bound_to_own_account: bool
    second_factor_enrolled: bool
    disabled: bool
    locked_until: datetime | None
    created_at: datetime


class StaffCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-z0-9._-]+$")
    role: str = Field(pattern=r"^(reviewer|approver|auditor|admin)$")
    password: str = Field(min_length=12, max_length=1024)
    citizen_id: str | None = Field(
        default=None,
        pattern=r"^\d{12}$",
        description="the staff member's own citizen ID: binds them to their own VssID account",
    )


class StaffChangeIn(BaseModel):
    change: Literal["disable", "enable", "reset_password", "reset_second_factor", "role"]
    password: str | None = Field(default=None, min_length=12, max_length=1024)
    role: str | None = Field(default=None, pattern=r"^(reviewer|approver|auditor|admin)$")


class Unlink(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class LinkOut(BaseModel):
    id: int
    account_id: int
    provider: str
    subject: str
    citizen_id: str
    method: str
    linked_by: str
    linked_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, link: FederatedLink) -> LinkOut:
        return cls(
            id=link.id,
            account_id=link.account_id,
            provider=link.provider,
            subject=link.subject,
            citizen_id=mask_citizen_id(link.citizen_id),
            method=link.method,
            linked_by=link.linked_by,
            linked_at=link.linked_at,
            last_login_at=link.last_login_at,
        )


class UnlinkedOut(BaseModel):
    link_id: int
    app_sessions_ended: int
    browser_sessions_ended: int


class AuditEventOut(BaseModel):
    id: int
    occurred_at: datetime
    event_type: str
    outcome: str
    account_id: int | None
    actor: str
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            occurred_at=event.occurred_at,
            event_type=event.event_type,
            outcome=event.outcome,
            account_id=event.account_id,
            actor=event.actor,
            request_id=event.request_id,
            details=event.details,
        )


PersonOut.model_rebuild()


class ImportRunOut(BaseModel):
    """One `vssid-broker accounts import` run (docs/accounts-import.md)."""

    id: int
    actor: str = Field(description="who ran it: `operator:<login name>`")
    file_name: str
    file_sha256: str | None = Field(description="hex SHA-256 of the file's bytes as read")
    status: Literal["running", "completed", "failed", "interrupted", "dry_run"]
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    added: int
    updated: int
    unchanged: int
    rejected: int
    rejected_by_reason: dict[str, int] = Field(description="`<field>.<reason>`: how many rows")
    sessions_ended: int
    reviews_opened: int
    error: str | None = Field(description="the file error a failed run stopped on")

    @classmethod
    def of(cls, run: ImportRun) -> ImportRunOut:
        return cls(
            id=run.id, actor=run.actor, file_name=run.file_name, file_sha256=run.file_digest,
            status=run.status, started_at=run.started_at, finished_at=run.finished_at,
            rows_read=run.rows_read, added=run.added, updated=run.updated,
            unchanged=run.unchanged, rejected=run.rejected,
            rejected_by_reason=run.rejected_by_reason, sessions_ended=run.sessions_ended,
            reviews_opened=run.reviews_opened, error=run.error,
        )  # fmt: skip
