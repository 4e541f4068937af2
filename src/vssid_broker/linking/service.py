"""Resolving a verified VNeID identity to a VssID account: one explicit outcome, never a guess.

A VNeID identity is the provider's pair (issuer, subject); the only attribute the broker links
on is the government-verified 12-digit citizen ID. The rules, in the order `resolve` applies
them (numbered as in the design; each returns as soon as it decides):

1. Already linked: the identity's link leads to its account, refused if that account is
   locked or closed. If VNeID now reports another citizen ID for the subject, the subject is
   "linked elsewhere" and staff review it.
2. Not linked, exactly one active account carries the citizen ID, that account has no other
   VNeID identity, and its name and birth date agree with VNeID's: link automatically,
   recorded as `citizen_id_match`, and the person is told.
3. No account carries the citizen ID, but accounts without one match on name and birth date:
   no link; a review case is opened. The app receives a one-time ticket with which the person
   may prove ownership of a candidate by its BHXH code (or citizen ID) and password
   (`linking.proof`): the proof is filed on the case for staff, or links at once where
   `link_on_password_proof` allows it.
4. The account carrying the citizen ID is linked to another subject, or its name or birth
   date disagree with VNeID's: a review case.
5. No candidate at all: "you need a VssID account first"; nothing is stored here.

A pending review case is bound to (issuer, subject) and the citizen ID: the next login of the
same identity finds the same case (the database allows one pending case per identity), and a
decision ends it. Races are settled by the database's unique constraints, never by a read
followed by a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import Select, and_, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from vssid_broker import metrics
from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.db import violates_unique
from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.identifiers import normalized_name
from vssid_broker.linking import consent
from vssid_broker.linking.models import (
    OPEN_STATUSES,
    PENDING_CASE_INDEX,
    FederatedLink,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
)
from vssid_broker.sealing import has_blind_index


@dataclass(frozen=True)
class Linked:
    """Rule 1: the identity was linked before; sign in."""

    account: Account
    confirmed_by_staff: bool = False
    """The first sign-in over a link staff made on review: the person is told it was confirmed."""


@dataclass(frozen=True)
class AutoLinked:
    """Rule 2: linked now, by an exact citizen-ID match; tell the person."""

    account: Account


@dataclass(frozen=True)
class NeedsReview:
    """Rules 3 and 4: staff must decide; no link, no tokens. `case` is pending."""

    case: ReviewCase


@dataclass(frozen=True)
class NoAccount:
    """Rule 5: no VssID account carries this citizen ID, nor could be meant."""


@dataclass(frozen=True)
class Refused:
    reason: str
    """Stable code: `account_locked`, `account_closed`, `citizen_id_changed`,
    `review_rejected` (staff reviewed the case and refused the link)."""


LinkOutcome = Linked | AutoLinked | NeedsReview | NoAccount | Refused

RULE_3_MAX_CANDIDATES = 20
"""Candidates a rule-3 case keeps for staff: people who share a name and a birth date are
few; more than this means the records need a clerk, and the case says so by its size."""


def record_agrees(account: Account, full_name: str, birth_date: date) -> bool:
    return (
        normalized_name(account.full_name) == normalized_name(full_name)
        and account.birth_date == birth_date
    )


async def resolve(
    session: AsyncSession,
    identity: VerifiedIdentity,
    *,
    now: datetime,
    request_id: str | None,
    consent_notice: str | None = None,
) -> LinkOutcome:
    """Decide, and write what the decision needs (a link or a review case, with its audit
    event) into `session`, uncommitted: the caller commits it with the rest of the login.

    `consent_notice`: the privacy notice under which the person signing in agreed, at VNeID, to
    share the claims; a link made now records that consent with it (`linking.consent`). None
    where nobody signs in (the demo seed, which keeps no link made so)."""
    linked = (
        await session.execute(
            select(FederatedLink, Account)
            .join(Account, Account.id == FederatedLink.account_id)
            .where(
                FederatedLink.provider == identity.issuer,
                FederatedLink.subject == identity.subject,
            )
            # Locks in one order: the link's row now, the audit chain's lock at commit. Taken
            # only when `last_login_at` was flushed, the row lock could come after the chain's
            # (the commit's flush writes both), and two logins of one person deadlocked.
            .with_for_update(of=FederatedLink)
        )
    ).first()
    if linked is not None:
        link, account = linked
        return await _rule_1_already_linked(session, identity, link, account, now, request_id)

    # Not linked yet: the open case of this identity, the account carrying its citizen ID and
    # that account's link, in one statement (each is found by a unique index: at most a row).
    # The database holds a citizen ID once (its blind index is unique), so "several
    # accounts carry it" cannot arise here; ReviewReason.SEVERAL_ACCOUNTS stays for cases
    # recorded before that rule and for staff reading them.
    pending, carrier, carrier_link = (
        await session.execute(_what_an_unlinked_identity_meets(identity))
    ).one()
    if pending is not None:
        # The case is bound to the citizen ID it was opened for; never carry it over.
        if pending.citizen_id != identity.citizen_id:
            return Refused("citizen_id_changed")
        return NeedsReview(pending)
    if carrier is not None:
        return await _rule_2_or_4_one_carrier(
            session, identity, carrier, carrier_link, now, request_id, consent_notice
        )

    # Rule 3: records from before the citizen ID was collected, matched on name and birth
    # date. An attribute VNeID verifies is not one the record was verified against: no link.
    # The name is compared in the query (by its normalized key, indexed with the birth date),
    # so however many other records share the birth date, a matching one is found.
    lookalikes = list(
        await session.scalars(
            select(Account)
            .where(
                Account.citizen_id_index.is_(None),
                Account.birth_date == identity.birth_date,
                Account.name_key == normalized_name(identity.full_name),
            )
            .order_by(Account.id)
            .limit(RULE_3_MAX_CANDIDATES + 1)
        )
    )
    if lookalikes:
        # More than the cap still goes to staff (with the first ones as the snapshot), never
        # to "no account": a person whose record exists is not told to register.
        return await _open_case(
            session,
            identity,
            ReviewReason.NAME_BIRTHDATE_MATCH,
            lookalikes[:RULE_3_MAX_CANDIDATES],
            now,
            request_id,
        )
    # Rule 5.
    return NoAccount()


def _what_an_unlinked_identity_meets(
    identity: VerifiedIdentity,
) -> Select[ReviewCase | None, Account | None, FederatedLink | None]:
    """One row: the identity's open review case, the account carrying its citizen ID and
    that account's link, each None when there is none (outer joins to a one-row anchor)."""
    anchor = select(literal(1).label("one")).subquery("anchor")
    query = (
        select(ReviewCase, Account, FederatedLink)
        .select_from(anchor)
        .outerjoin(
            ReviewCase,
            and_(
                ReviewCase.provider == identity.issuer,
                ReviewCase.subject == identity.subject,
                ReviewCase.status.in_(OPEN_STATUSES),
            ),
        )
        .outerjoin(Account, has_blind_index(Account.citizen_id_index, identity.citizen_id))
        .outerjoin(FederatedLink, FederatedLink.account_id == Account.id)
        .limit(1)
    )
    return cast(Select[ReviewCase | None, Account | None, FederatedLink | None], query)


async def _rule_1_already_linked(
    session: AsyncSession,
    identity: VerifiedIdentity,
    link: FederatedLink,
    account: Account,
    now: datetime,
    request_id: str | None,
) -> LinkOutcome:
    if account.status != AccountStatus.ACTIVE:
        return Refused(f"account_{account.status}")
    if link.citizen_id != identity.citizen_id:
        # VNeID changed the person behind a subject: never follow that silently.
        return await _open_case(
            session, identity, ReviewReason.SUBJECT_LINKED_ELSEWHERE, [account], now, request_id
        )
    first_after_review = link.method == "staff_review" and link.last_login_at is None
    # A Core UPDATE of the row locked above, not an ORM flush: nothing reads it back.
    await session.execute(
        update(FederatedLink)
        .where(FederatedLink.id == link.id)
        .values(last_login_at=now)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(link, "last_login_at", now)  # the loaded row says so too
    return Linked(account, confirmed_by_staff=first_after_review)


async def _rule_2_or_4_one_carrier(
    session: AsyncSession,
    identity: VerifiedIdentity,
    account: Account,
    existing: FederatedLink | None,
    now: datetime,
    request_id: str | None,
    consent_notice: str | None = None,
) -> LinkOutcome:
    """`existing`: the account's link, if it has one (to this identity or another)."""
    if account.status != AccountStatus.ACTIVE:
        return Refused(f"account_{account.status}")
    if existing is not None and (existing.provider, existing.subject) == (
        identity.issuer,
        identity.subject,
    ):
        # A concurrent first login of this same identity committed its link a moment ago.
        return Linked(account)
    if existing is not None:
        # Rule 4: one VNeID identity per account; a second subject is a person for staff.
        return await _open_case(
            session, identity, ReviewReason.ACCOUNT_LINKED_ELSEWHERE, [account], now, request_id
        )
    if not record_agrees(account, identity.full_name, identity.birth_date):
        # Rule 4: same citizen ID, different name or birth date: a data error or a mix-up.
        return await _open_case(
            session, identity, ReviewReason.RECORD_MISMATCH, [account], now, request_id
        )

    # Rule 2: link, with the person's consent.
    terms = None
    if consent_notice is not None:
        terms = consent.Terms(identity.shared_claims, consent_notice)
    created = await _link_with_consent(session, identity, account, terms, now)
    if not created:
        # A concurrent first login of the same person won the race: use its link if it is ours.
        winner = await session.scalar(
            select(FederatedLink).where(
                FederatedLink.provider == identity.issuer,
                FederatedLink.subject == identity.subject,
                FederatedLink.account_id == account.id,
            )
        )
        if winner is not None:
            return Linked(account)
        return await _open_case(
            session, identity, ReviewReason.ACCOUNT_LINKED_ELSEWHERE, [account], now, request_id
        )
    audit.record(
        session,
        event_type=AuditEventType.LINK_CREATED,
        outcome="auto_linked",
        now=now,
        account_id=account.id,
        request_id=request_id,
        method="citizen_id_match",
        citizen_id=identity.masked_citizen_id,
        provider=identity.issuer,
    )
    if terms is not None:
        consent.audit_given(
            session,
            account_id=account.id,
            provider=identity.issuer,
            terms=terms,
            now=now,
            request_id=request_id,
        )
    return AutoLinked(account)


async def _link_with_consent(
    session: AsyncSession,
    identity: VerifiedIdentity,
    account: Account,
    terms: consent.Terms | None,
    now: datetime,
) -> bool:
    """Insert the link unless the identity or the account has one (the unique constraints on
    federated_links settle a concurrent first login: ON CONFLICT DO NOTHING leaves the
    transaction usable, no savepoint needed, and says so) and, if it was inserted, the
    person's consent to it (`terms`). One statement on PostgreSQL, the link's INSERT
    a data-modifying CTE the consent's selects from; SQLite has no such CTE: two."""
    postgres = (await session.connection()).dialect.name == "postgresql"
    link = (
        (postgresql.insert if postgres else sqlite.insert)(FederatedLink)
        .values(
            account_id=account.id,
            provider=identity.issuer,
            subject=identity.subject,
            citizen_id_sealed=FederatedLink.citizen_id.sealed_for(identity.citizen_id, account.id),
            method="citizen_id_match",
            linked_by="system",
            linked_at=now,
            last_login_at=now,
        )
        .on_conflict_do_nothing()
        .returning(FederatedLink.account_id)
    )
    if postgres and terms is not None:
        new_link = link.cte("new_link")
        given = consent.insert_given(
            new_link.c.account_id, provider=identity.issuer, terms=terms, now=now
        )
        return await session.scalar(given.add_cte(new_link)) is not None
    if await session.scalar(link) is None:
        return False
    if terms is not None:
        given = consent.insert_given(
            literal(account.id), provider=identity.issuer, terms=terms, now=now
        )
        await session.execute(given)
    return True


async def _open_case(
    session: AsyncSession,
    identity: VerifiedIdentity,
    reason: ReviewReason,
    candidates: list[Account],
    now: datetime,
    request_id: str | None,
) -> LinkOutcome:
    """Open a pending case for this identity, or find the one a concurrent login opened.

    A case staff rejected is not reopened by logging in again with the same data: the person
    is told to contact the agency (rules may still link at once if the records change)."""
    rejected = await session.scalar(
        select(ReviewCase.id)
        .where(
            ReviewCase.provider == identity.issuer,
            ReviewCase.subject == identity.subject,
            has_blind_index(ReviewCase.citizen_id_index, identity.citizen_id),
            ReviewCase.reason == reason,
            ReviewCase.status == ReviewStatus.REJECTED,
        )
        .limit(1)
    )
    if rejected is not None:
        return Refused("review_rejected")
    case = ReviewCase(
        provider=identity.issuer,
        subject=identity.subject,
        citizen_id=identity.citizen_id,
        full_name=identity.full_name,
        birth_date=identity.birth_date,
        candidate_account_ids=[a.id for a in candidates],
        reason=reason,
        status=ReviewStatus.PENDING,
        version=1,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(case)
    except IntegrityError as error:
        if not violates_unique(error, PENDING_CASE_INDEX, ("provider", "subject")):
            raise  # a CHECK or NOT NULL failure is a bug to see, not a concurrent login
        # uq_review_cases_pending_identity: a concurrent login opened it first.
        existing = await session.scalar(
            select(ReviewCase).where(
                ReviewCase.provider == identity.issuer,
                ReviewCase.subject == identity.subject,
                ReviewCase.status.in_(OPEN_STATUSES),
            )
        )
        if existing is None:  # decided in the meantime: the next login sees the decision
            return Refused("review_in_progress")
        return NeedsReview(existing)
    metrics.REVIEW_CASES_OPENED.labels(reason).inc()
    audit.record(
        session,
        event_type=AuditEventType.REVIEW_CASE_OPENED,
        outcome=reason,
        now=now,
        request_id=request_id,
        about_citizen_id=identity.citizen_id,
        case_id=case.id,
        candidate_account_ids=case.candidate_account_ids,
        citizen_id=identity.masked_citizen_id,
        provider=identity.issuer,
    )
    return NeedsReview(case)
