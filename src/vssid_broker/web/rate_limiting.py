"""Rate limits at the HTTP face: who the client is, which limit a route passes, the 429.

- `client_address`: the peer's address, or, only when the peer is one of
  `VSSID_TRUSTED_PROXIES`, the first address in `X-Forwarded-For` (read from the right) that is
  not a trusted proxy. A client cannot pick its own address by sending the header itself.
- `LimitLoginStart`, `LimitTokenEndpoint`: route dependencies, per client address
  (`limit_token_endpoint`, the latter's check, for a route that calls it itself).
- `password_attempt`: the limits every password sign-in passes (the app's sign-in, the proof by
  password, staff sign-in — and any other place that checks a password, such as a sign-in
  form for staff: wrap the check in `async with password_attempt(...)`).
- `refuse`: the one place a 429 of a rate limit is raised (count rate-limit hits there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_address
from typing import Literal, NoReturn

from fastapi import Depends, Request

from vssid_broker import metrics
from vssid_broker.config import Settings
from vssid_broker.context import BrokerContext
from vssid_broker.errors import DomainError, RateLimited
from vssid_broker.rate_limits import Rule
from vssid_broker.web.deps import Ctx

PasswordRealm = Literal["account", "staff"]
"""Whose passwords: a VssID account's (BHXH code or citizen ID) or a staff member's."""


def client_address(request: Request, settings: Settings) -> str:
    peer = request.client.host if request.client else ""
    if not settings.trusted_proxies or not _trusted(peer, settings):
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
    ]
    for candidate in reversed(forwarded):
        try:
            ip_address(candidate)
        except ValueError:
            return peer  # a malformed hop: trust nothing further along the chain
        if not _trusted(candidate, settings):
            return candidate
        peer = candidate
    return peer


def _trusted(address: str, settings: Settings) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in settings.trusted_proxies)


def refuse(rule: Rule, retry_after: int) -> NoReturn:
    """Answer 429 `rate_limited` with `Retry-After`. Every rate-limit refusal passes here."""
    metrics.rate_limited(rule.name)
    raise RateLimited(f"rate limit {rule.name} exceeded", retry_after=retry_after)


async def enforce(ctx: BrokerContext, rule: Rule, *parts: str) -> None:
    retry_after = await ctx.rate_limits.hit(rule, *parts)
    if retry_after is not None:
        refuse(rule, retry_after)


async def _login_start(request: Request, ctx: Ctx) -> None:
    await enforce(
        ctx, ctx.rate_limits.rules.login_start_per_ip, client_address(request, ctx.settings)
    )


async def limit_token_endpoint(request: Request, ctx: Ctx) -> None:
    """The token endpoints' limit per client address (`LimitTokenEndpoint`; the refresh grant
    calls it itself)."""
    await enforce(ctx, ctx.rate_limits.rules.token_per_ip, client_address(request, ctx.settings))


async def _second_factor(request: Request, ctx: Ctx) -> None:
    # A code guessed from one client counts like a password attempt from it; the per-user
    # lockout counts wrong codes too (admin.service.check_second_factor).
    await enforce(ctx, ctx.rate_limits.rules.password_per_ip, client_address(request, ctx.settings))


LimitLoginStart = Depends(_login_start)
LimitTokenEndpoint = Depends(limit_token_endpoint)
LimitSecondFactor = Depends(_second_factor)


@asynccontextmanager
async def password_attempt(
    request: Request, ctx: BrokerContext, *, realm: PasswordRealm, identifier: str
) -> AsyncIterator[None]:
    """Wrap one password check. Before it: the limits per client address and per identifier
    (every attempt counts), and per address-and-identifier (only failures count, and fewer
    than lock an account: one client cannot lock someone else's sign-in). A failure is a 401
    or a 429 raised inside the block.

    The lockout itself (per account, and the same answers for identifiers that name no one)
    is in the sign-in services; they take `ctx.rate_limits` for the unknown identifiers."""
    rules = ctx.rate_limits.rules
    client = client_address(request, ctx.settings)
    identifier = identifier.strip()
    await enforce(ctx, rules.password_per_ip, client)
    await enforce(ctx, rules.password_per_identifier, realm, identifier)
    pair = rules.password_per_ip_and_identifier
    retry_after = await ctx.rate_limits.exceeded(pair, client, realm, identifier)
    if retry_after is not None:
        refuse(pair, retry_after)
    try:
        yield
    except DomainError as error:
        if error.status in (401, 429):
            await ctx.rate_limits.hit(pair, client, realm, identifier)
        raise
