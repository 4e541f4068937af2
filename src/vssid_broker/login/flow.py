"""The story of one login, top to bottom. Routes call these steps and nothing else.

    start  → a login transaction (state, nonce, PKCE verifier; single use, minutes long)
             and the authorization URL at VNeID, asking for level 2.
    finish → consume the transaction; check who is calling back (browser binding or the
             app's own PKCE); check the response (error, RFC 9207 `iss`); exchange the code;
             validate the ID token; map the claims to a VerifiedIdentity; resolve the link;
             then the post-login step.

The post-login step (`issue_session`) is the same for every sign-in method (VNeID here, the
password in `login.password`): a browser gets a new server-side session, the app a new token
family, and the login is audited — link, session and audit in one commit.

Any refusal raises a `LoginRefused` with a stable code after writing one audit event; it
writes nothing else.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.accounts.models import Account
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.context import BrokerContext
from vssid_broker.errors.login import (
    AccountNotActive,
    AppVerifierMismatch,
    LinkRefused,
    LinkUnderReview,
    LoginNotFromThisBrowser,
    LoginRefused,
    ReviewRejected,
    VssidAccountRequired,
)
from vssid_broker.federation import transactions
from vssid_broker.federation.callback import CallbackParams as CallbackParams  # for the routes
from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.linking import proof as linking_proof
from vssid_broker.linking import service as linking
from vssid_broker.opaque_tokens import hash_token
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions import tokens as app_tokens
from vssid_broker.sessions.tokens import IssuedTokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedLogin:
    authorization_url: str
    state: str
    expires_in: int


@dataclass(frozen=True)
class ClientInfo:
    """What the caller brings besides the callback itself."""

    user_agent: str | None = None
    """Shown to the person in their list of sessions."""
    dpop_jkt: str | None = None
    """App: thumbprint of its DPoP key; the tokens are bound to it (RFC 9449 §5)."""
    replaces_browser_session: str | None = None
    """Browser: the session cookie it held before the login, ended in the same commit
    (a login always gets a new session id: no session fixation)."""


@dataclass(frozen=True)
class LoginSucceeded:
    account: Account
    newly_linked: bool
    acr: str
    return_to: str | None
    browser_session: str | None = None
    tokens: IssuedTokens | None = None
    confirmed_by_staff: bool = False
    """The first sign-in over a link staff confirmed on review."""


# --- start --------------------------------------------------------------------------------------
async def start(
    ctx: BrokerContext,
    *,
    channel: str,
    redirect_uri: str,
    return_to: str | None = None,
    browser_binding: str | None = None,
    app_code_challenge: str | None = None,
    max_age: int | None = None,
    prompt: str | None = None,
) -> StartedLogin:
    """`max_age` and `prompt` ask VNeID for a fresh sign-in (a step-up, RFC 9470 §4); the
    callback then checks the ID token's `auth_time` against the `max_age` sent."""
    settings, now = ctx.settings, ctx.clock()
    if max_age is None:
        max_age = settings.vneid_max_age_seconds
    metadata = await ctx.provider.metadata()
    metrics.LOGINS_STARTED.labels(channel).inc()
    async with ctx.autocommit.begin() as session:  # one INSERT
        created = await transactions.create(
            session,
            channel=channel,
            redirect_uri=redirect_uri,
            now=now,
            ttl_seconds=settings.login_transaction_ttl_seconds,
            return_to=return_to,
            browser_binding=browser_binding,
            app_code_challenge=app_code_challenge,
            max_age=max_age,
            prompt=prompt,
        )
    client = settings.vneid_client_for(channel)
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.vneid_scope,
        "state": created.state,
        "nonce": created.nonce,
        # RFC 9700 §2.1.1: PKCE with S256, always.
        "code_challenge": create_s256_code_challenge(created.code_verifier),
        "code_challenge_method": "S256",
        **ctx.profile.level2_request(),
    }
    if max_age is not None:
        params["max_age"] = str(max_age)
    if prompt is not None:
        params["prompt"] = prompt
    if settings.vneid_use_par:
        # RFC 9126 §4: only client_id and request_uri travel through the browser.
        request_uri = await ctx.provider.push_authorization_request(params, client)
        params = {"client_id": client.client_id, "request_uri": request_uri}
    url = add_params_to_uri(metadata.authorization_endpoint, list(params.items()))
    return StartedLogin(url, created.state, settings.login_transaction_ttl_seconds)


# --- finish -------------------------------------------------------------------------------------
async def finish_browser(
    ctx: BrokerContext,
    params: CallbackParams,
    *,
    browser_binding: str | None,
    request_id: str,
    client: ClientInfo = ClientInfo(),
) -> LoginSucceeded:
    async def caller_check(txn: LoginTransaction) -> None:
        # RFC 9700 §4.7: the state must come back to the browser that started the login.
        expected = txn.browser_binding_hash or ""
        given = hash_token(browser_binding) if browser_binding else ""
        if not hmac.compare_digest(expected, given):
            raise LoginNotFromThisBrowser("browser binding cookie missing or different")

    return await _finish(ctx, "browser", params, caller_check, request_id, client)


async def finish_app(
    ctx: BrokerContext,
    params: CallbackParams,
    *,
    code_verifier: str,
    request_id: str,
    client: ClientInfo = ClientInfo(),
) -> LoginSucceeded:
    async def caller_check(txn: LoginTransaction) -> None:
        # RFC 7636 §4.6: only the app that sent the challenge holds the verifier.
        expected = txn.app_code_challenge or ""
        if not hmac.compare_digest(expected, create_s256_code_challenge(code_verifier)):
            raise AppVerifierMismatch("code_verifier does not match the code_challenge")

    return await _finish(ctx, "app", params, caller_check, request_id, client)


async def _finish(
    ctx: BrokerContext,
    channel: str,
    params: CallbackParams,
    caller_check: Callable[[LoginTransaction], Awaitable[None]],
    request_id: str,
    client: ClientInfo,
) -> LoginSucceeded:
    started = time.perf_counter()
    identity: VerifiedIdentity | None = None
    try:
        # Committed before VNeID is called: the state is spent even if what follows fails.
        async with ctx.autocommit.begin() as session:
            txn = await transactions.consume(
                session, state=params.state, channel=channel, now=ctx.clock()
            )
        await caller_check(txn)
        # The provider profile (standard OpenID Connect or VNeID's dialect) answers with a
        # verified identity or refuses; this story does not know which profile runs.
        answer = await ctx.profile.verified_identity(
            params, txn, ctx.settings.vneid_client_for(channel), ctx.clock()
        )
        identity = answer.identity
        result = await _link_and_sign_in(
            ctx, channel, txn, identity, request_id, answer.id_token, client
        )
    except LoginRefused as refusal:
        duration_ms = _count_finished(channel, refusal.code, started)
        await _audit_refusal(ctx, channel, refusal, identity, request_id, duration_ms)
        raise
    duration_ms = _count_finished(channel, "succeeded", started)
    log.info(
        "login succeeded channel=%s account=%s linked_now=%s in %.1f ms",
        channel,
        result.account.id,
        result.newly_linked,
        duration_ms,
        extra={"outcome": "succeeded", "channel": channel, "duration_ms": round(duration_ms, 1)},
    )
    return result


def _count_finished(channel: str, outcome: str, started: float) -> float:
    """Count a finished login by outcome; its duration in milliseconds."""
    seconds = time.perf_counter() - started
    metrics.LOGINS_FINISHED.labels(channel, outcome).inc()
    metrics.LOGIN_DURATION.labels(channel).observe(seconds)
    return seconds * 1000


async def _link_and_sign_in(
    ctx: BrokerContext,
    channel: str,
    txn: LoginTransaction,
    identity: VerifiedIdentity,
    request_id: str,
    id_token: str | None,
    client: ClientInfo,
) -> LoginSucceeded:
    now = ctx.clock()
    async with ctx.db.begin() as session:
        # A link made now records the person's consent with it, in the same statement.
        outcome = await linking.resolve(
            session,
            identity,
            now=now,
            request_id=request_id,
            consent_notice=ctx.settings.privacy_notice_version,
        )
        if not isinstance(outcome, linking.NeedsReview):
            return await _sign_in(
                ctx, session, channel, txn, identity, outcome, request_id, id_token, client
            )
        proof: dict[str, Any] = {}
        if channel == "app" and linking_proof.proof_allowed(outcome.case):
            # Rule 3: the app may let the person prove a candidate by its password.
            ttl = ctx.settings.link_proof_ttl_seconds
            ticket = linking_proof.issue_proof_ticket(outcome.case, now=now, ttl_seconds=ttl)
            proof = {"proof_ticket": ticket, "proof_expires_in": ttl}
    # Committed above: the review case outlives this refusal, so staff can decide it.
    raise LinkUnderReview(
        f"review case {outcome.case.id} pending ({outcome.case.reason})", extensions=proof
    )


async def _sign_in(
    ctx: BrokerContext,
    session: AsyncSession,
    channel: str,
    txn: LoginTransaction,
    identity: VerifiedIdentity,
    outcome: linking.LinkOutcome,
    request_id: str,
    id_token: str | None,
    client: ClientInfo,
) -> LoginSucceeded:
    match outcome:
        case linking.NoAccount():
            raise VssidAccountRequired("no VssID account carries this citizen ID")
        case linking.Refused("account_locked" | "account_closed" as reason):
            raise AccountNotActive(reason)
        case linking.Refused("review_rejected"):
            raise ReviewRejected("staff reviewed the case and refused the link")
        case linking.Refused(reason):
            raise LinkRefused(reason)
        case linking.Linked(account) | linking.AutoLinked(account):
            pass
        case linking.NeedsReview():  # handled by the caller
            raise AssertionError("a review case never signs in")
    newly_linked = isinstance(outcome, linking.AutoLinked)
    issued = await issue_session(
        ctx,
        session,
        channel,
        account,
        acr=identity.acr,
        auth_time=_auth_time(identity),
        request_id=request_id,
        client=client,
        # Kept sealed for RP-initiated logout's id_token_hint (OIDC RP-Initiated Logout §2).
        vneid_id_token=id_token,
        vneid_sid=identity.sid,
        audit_details={"linked_now": newly_linked},
    )
    return LoginSucceeded(
        account,
        newly_linked,
        identity.acr,
        txn.return_to,
        issued.browser_session,
        issued.tokens,
        confirmed_by_staff=isinstance(outcome, linking.Linked) and outcome.confirmed_by_staff,
    )


def _auth_time(identity: VerifiedIdentity) -> datetime | None:
    """When the person signed in at VNeID, as the ID token says; a provider that does not say
    gives a sign-in that step-up never counts as fresh (docs/api.md, "Step-up")."""
    if identity.auth_time is None:
        return None
    return datetime.fromtimestamp(identity.auth_time, UTC)


# --- after any sign-in method -------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedSession:
    browser_session: str | None = None
    """Browser: the new session cookie's value."""
    tokens: IssuedTokens | None = None
    """App: the first pair of a new token family."""


async def issue_session(
    ctx: BrokerContext,
    session: AsyncSession,
    channel: str,
    account: Account,
    *,
    acr: str,
    request_id: str,
    client: ClientInfo,
    auth_time: datetime | None = None,
    vneid_id_token: str | None = None,
    vneid_sid: str | None = None,
    audit_event: AuditEventType = AuditEventType.LOGIN,
    audit_details: dict[str, Any] | None = None,
) -> IssuedSession:
    """The post-login step of every sign-in method (Kratos' session issuer): a browser gets a
    new session (an older one in that browser ends: no session fixation), the app a new token
    family; the login is audited in the same transaction."""
    now = ctx.clock()
    issued = IssuedSession()
    if channel == "browser":
        await browser_sessions.end(session, client.replaces_browser_session, now)
        issued = IssuedSession(
            browser_session=await browser_sessions.start(
                session,
                account_id=account.id,
                acr=acr,
                auth_time=auth_time,
                now=now,
                ttl_seconds=ctx.settings.browser_session_ttl_seconds,
                user_agent=client.user_agent,
                vneid_id_token=vneid_id_token,
                keys=ctx.keys,
                vneid_sid=vneid_sid,
            )
        )
    else:
        issued = IssuedSession(
            tokens=await app_tokens.issue(
                session,
                ctx.access_tokens,
                ctx.refresh_tokens,
                account_id=account.id,
                acr=acr,
                auth_time=auth_time,
                now=now,
                user_agent=client.user_agent,
                dpop_jkt=client.dpop_jkt,
            )
        )
    audit.record(
        session,
        event_type=audit_event,
        outcome="succeeded",
        now=now,
        account_id=account.id,
        request_id=request_id,
        channel=channel,
        acr=acr,
        **(audit_details or {}),
    )
    return issued


async def _audit_refusal(
    ctx: BrokerContext,
    channel: str,
    refusal: LoginRefused,
    identity: VerifiedIdentity | None,
    request_id: str,
    duration_ms: float,
) -> None:
    log.info(
        "login refused channel=%s code=%s detail=%s",
        channel,
        refusal.code,
        refusal.detail,
        extra={"outcome": refusal.code, "channel": channel, "duration_ms": round(duration_ms, 1)},
    )
    # A transaction, not autocommit: the audit chain's lock must last until the commit.
    async with ctx.db.begin() as session:
        audit.record(
            session,
            event_type=refusal.audit_event or AuditEventType.LOGIN,
            outcome=refusal.code,
            now=ctx.clock(),
            request_id=request_id,
            channel=channel,
            detail=refusal.detail,
            citizen_id=identity.masked_citizen_id if identity else None,
            # Refused after VNeID verified who it is: the person's export shows it.
            about_citizen_id=identity.citizen_id if identity else None,
        )
