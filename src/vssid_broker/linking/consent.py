"""The person's consent to link their VNeID identity, recorded when the link is made and
withdrawn when it is removed.

Personal-data law (Decree 13/2023 Art. 11, Law 91/2025) wants consent explicit, specific to a
purpose, and reproducible: one row per link with the claims shared (their names), the purpose,
the privacy notice's version and the time, plus an audit event. The person sees it on their
account page and in their export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Insert, Table, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings
from vssid_broker.linking.models import LinkConsent

LINK_CONSENTS = cast(Table, LinkConsent.__table__)

LINK_PURPOSE = "link_vneid_to_vssid"
"""Sign in to VssID with VNeID: the verified citizen ID finds the person's VssID record."""


CLAIMS_IN_WORDS = {
    "SoDinhDanh": "số định danh cá nhân",
    "sub": "số định danh cá nhân",
    "HoVaTen": "họ và tên",
    "name": "họ và tên",
    "NgayThangNamSinh": "ngày sinh",
    "birthdate": "ngày sinh",
    "GioiTinh": "giới tính",
    "gender": "giới tính",
    "acr": "mức độ tài khoản",
}
"""What each claim is, in the words a person reads (VNeID's own names and the standard ones
mean the same data, so they read the same)."""


def claims_in_words(claims: list[str] | tuple[str, ...]) -> list[str]:
    """The kinds of data shared, each once, in a fixed order; a claim with no words yet reads
    as "thông tin khác" rather than as its technical name."""
    order = list(dict.fromkeys(CLAIMS_IN_WORDS.values()))
    words = {CLAIMS_IN_WORDS.get(claim, "thông tin khác") for claim in claims}
    return sorted(words, key=lambda word: order.index(word) if word in order else len(order))


@dataclass(frozen=True)
class Terms:
    """What a consent is given to: the claims shared and the privacy notice's version."""

    claims: tuple[str, ...]
    notice_version: str

    @classmethod
    def of_review_case(cls, settings: Settings) -> Terms:
        """A link made from a review case: the claims its snapshot kept, under today's
        notice (the person agreed at VNeID when the login that opened the case began)."""
        return cls(
            claims=tuple(
                sorted(
                    {
                        settings.vneid_citizen_id_claim,
                        settings.vneid_name_claim,
                        settings.vneid_birthdate_claim,
                    }
                )
            ),
            notice_version=settings.privacy_notice_version,
        )


def record(
    session: AsyncSession,
    *,
    account_id: int,
    provider: str,
    terms: Terms,
    now: datetime,
    request_id: str | None,
    actor: str = "person",
    renewal: bool = False,
) -> LinkConsent:
    consent = LinkConsent(
        account_id=account_id,
        provider=provider,
        claims=list(terms.claims),
        purpose=LINK_PURPOSE,
        notice_version=terms.notice_version,
        given_at=now,
    )
    session.add(consent)
    audit_given(
        session,
        account_id=account_id,
        provider=provider,
        terms=terms,
        now=now,
        request_id=request_id,
        actor=actor,
        renewal=renewal,
    )
    return consent


def insert_given(
    account_id: ColumnElement[int], *, provider: str, terms: Terms, now: datetime
) -> Insert:
    """`record`'s row as one INSERT … SELECT, a row for each `account_id` the SELECT finds: so
    a consent rides in the statement that makes its link (`linking.service`) and is given only
    if the link was made. Returns the consents' account ids; pair it with `audit_given`."""
    row = select(
        account_id,
        literal(provider, LINK_CONSENTS.c.provider.type),
        literal(list(terms.claims), LINK_CONSENTS.c.claims.type),
        literal(LINK_PURPOSE, LINK_CONSENTS.c.purpose.type),
        literal(terms.notice_version, LINK_CONSENTS.c.notice_version.type),
        literal(now, LINK_CONSENTS.c.given_at.type),
    )
    columns = ["account_id", "provider", "claims", "purpose", "notice_version", "given_at"]
    return insert(LINK_CONSENTS).from_select(columns, row).returning(LINK_CONSENTS.c.account_id)


def audit_given(
    session: AsyncSession,
    *,
    account_id: int,
    provider: str,
    terms: Terms,
    now: datetime,
    request_id: str | None,
    actor: str = "person",
    renewal: bool = False,
) -> None:
    """The audit event of a consent given (or renewed)."""
    audit.record(
        session,
        event_type=AuditEventType.CONSENT_RECORDED,
        outcome="renewed" if renewal else "given",
        now=now,
        actor=actor,
        account_id=account_id,
        request_id=request_id,
        purpose=LINK_PURPOSE,
        notice_version=terms.notice_version,
        claims=list(terms.claims),
        provider=provider,
    )


def given_under_an_older_notice(
    consents: list[LinkConsent], notice_version: str
) -> list[LinkConsent]:
    """Of `consents` (newest first, as `of_account` lists them), the live one of each provider
    when it was given under another notice than today's: the person agreed to a text that has
    changed since, and is asked to agree to the new one (or to unlink)."""
    newest: dict[str, LinkConsent] = {}
    for row in consents:
        if row.withdrawn_at is None:
            newest.setdefault(row.provider, row)
    return [row for row in newest.values() if row.notice_version != notice_version]


async def renew(
    session: AsyncSession,
    *,
    account_id: int,
    notice_version: str,
    now: datetime,
    request_id: str | None,
) -> int:
    """The person agrees to today's notice: a new consent for each link whose consent was
    given under an older one, with the same claims and purpose. The older consent stays, as
    the record of what was agreed before; unlinking withdraws both. Returns how many."""
    outdated = given_under_an_older_notice(await of_account(session, account_id), notice_version)
    for old in outdated:
        record(
            session,
            account_id=account_id,
            provider=old.provider,
            terms=Terms(tuple(old.claims), notice_version),
            now=now,
            request_id=request_id,
            renewal=True,
        )
    return len(outdated)


async def withdraw(session: AsyncSession, *, account_id: int, provider: str, now: datetime) -> int:
    """Mark the account's live consents for `provider` withdrawn (the link is gone)."""
    result = await session.execute(
        update(LinkConsent)
        .where(
            LinkConsent.account_id == account_id,
            LinkConsent.provider == provider,
            LinkConsent.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def of_account(session: AsyncSession, account_id: int) -> list[LinkConsent]:
    return list(
        await session.scalars(
            select(LinkConsent)
            .where(LinkConsent.account_id == account_id)
            .order_by(LinkConsent.given_at.desc(), LinkConsent.id.desc())
        )
    )
