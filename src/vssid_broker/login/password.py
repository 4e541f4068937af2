"""The password method: the app's sign-in with a BHXH code (or citizen ID) and password, and
linking rule 3's proof by password after a VNeID login. Both write what they must (a failure
counted, a ticket spent) even when they refuse: the refusal is raised after the commit."""

from __future__ import annotations

from vssid_broker.accounts import password_sign_in as passwords
from vssid_broker.accounts.models import Account
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.context import BrokerContext
from vssid_broker.errors import DomainError
from vssid_broker.errors.login import (
    AccountAlreadyLinked,
    AccountNotActive,
    PasswordSignInLocked,
    ProofInvalid,
    ProofNotACandidate,
    WrongPassword,
)
from vssid_broker.identifiers import mask_identifier
from vssid_broker.linking import proof as linking_proof
from vssid_broker.login.flow import ClientInfo, IssuedSession, issue_session
from vssid_broker.passwords import PASSWORD_ACR


async def sign_in(
    ctx: BrokerContext, identifier: str, password: str, *, request_id: str
) -> tuple[Account, IssuedSession]:
    """The app's password sign-in; on success the same post-login step as a VNeID login."""
    now = ctx.clock()
    identifier = identifier.strip()
    shown = mask_identifier(identifier)
    verdict = await passwords.verify(
        ctx.autocommit, identifier, password, now=now, unknown=ctx.rate_limits
    )
    async with ctx.db.begin() as session:
        outcome = await passwords.check(
            session, verdict, now=now, settings=ctx.settings, unknown=ctx.rate_limits
        )
        if isinstance(outcome, passwords.SignedIn):
            issued = await issue_session(
                ctx,
                session,
                "app",
                outcome.account,
                acr=PASSWORD_ACR,
                request_id=request_id,
                client=ClientInfo(),
                audit_event=AuditEventType.LOGIN_PASSWORD,
                audit_details={"identifier": shown},
            )
            return outcome.account, issued
        refusal, audited_as = _refusal(outcome)
        audit.record(
            session,
            event_type=AuditEventType.LOGIN_PASSWORD,
            outcome=audited_as,
            now=now,
            account_id=outcome.account_id,
            request_id=request_id,
            identifier=shown,
        )
    # Committed above: a failure counts even though the request is refused.
    raise refusal


def _refusal(
    outcome: passwords.NotActive | passwords.Failed | passwords.Locked,
) -> tuple[DomainError, str]:
    """What the person is told, and the outcome the audit trail records (finer: it tells a
    lock that began now from one already in force)."""
    match outcome:
        case passwords.NotActive(account):
            return AccountNotActive("account not active"), f"account_{account.status}"
        case passwords.Locked():
            return PasswordSignInLocked("too many wrong passwords"), "locked"
        case passwords.Failed(_, True):
            return PasswordSignInLocked("too many wrong passwords"), "locked_now"
        case _:
            return WrongPassword("wrong identifier or password"), "invalid_credentials"


PROOF_REFUSALS: dict[str, type[DomainError]] = {
    "proof_invalid": ProofInvalid,
    "invalid_credentials": WrongPassword,
    "locked": PasswordSignInLocked,
    "account_not_active": AccountNotActive,
    "not_a_candidate": ProofNotACandidate,
    "already_linked": AccountAlreadyLinked,
}
"""Each refusal of `linking.proof` and the error the person is shown."""


async def prove_ownership(
    ctx: BrokerContext, *, ticket: str, identifier: str, password: str, request_id: str
) -> linking_proof.ProofLinked | linking_proof.ProofFiled:
    now = ctx.clock()
    verdict = await passwords.verify(
        ctx.autocommit, identifier.strip(), password, now=now, unknown=ctx.rate_limits
    )
    async with ctx.db.begin() as session:
        outcome = await linking_proof.prove_ownership(
            session,
            ticket=ticket,
            verdict=verdict,
            now=now,
            settings=ctx.settings,
            request_id=request_id,
            unknown=ctx.rate_limits,
        )
    # Committed above: a spent ticket and a failure count stay spent even when refused.
    if isinstance(outcome, linking_proof.ProofRefused):
        raise PROOF_REFUSALS[outcome.reason](f"proof refused: {outcome.reason}")
    return outcome
