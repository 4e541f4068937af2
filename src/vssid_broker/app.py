"""`create_app(settings)`: routers, middleware and lifespan of one broker process. Wiring only."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from joserfc import jwt
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from vssid_broker import __version__, passwords, schema, sealing
from vssid_broker.audit import chain
from vssid_broker.config import Settings
from vssid_broker.context import BrokerContext
from vssid_broker.db import (
    autocommit_session_factory,
    count_pool_use,
    create_engine,
    session_factory,
    utcnow,
)
from vssid_broker.federation.outbound import OutboundClient
from vssid_broker.federation.profiles import profile_for
from vssid_broker.federation.provider import ProviderClient
from vssid_broker.rate_limits import RateLimits
from vssid_broker.requests.sms import DemoSmsSender
from vssid_broker.sessions.access_tokens import AccessTokens
from vssid_broker.sessions.keys import SigningKeys, derive_key, load_key_encryption_key
from vssid_broker.sessions.live_cache import LiveSessionCache, LiveSessionListener
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.web import (
    account_requests,
    app_login,
    docs,
    me,
    openapi,
    operations,
    pages,
    privacy_pages,
    problems,
    requests,
    tokens,
)
from vssid_broker.web.middleware import BrokerRequests, ErrorHandler
from vssid_broker.web.staff import (
    audit,
    cases,
    import_runs,
    people,
    sign_in,
    staff_users,
    unlinking,
)
from vssid_broker.web.staff import requests as staff_requests
from vssid_broker.web.staff.console import audit as console_audit
from vssid_broker.web.staff.console import base as console_base
from vssid_broker.web.staff.console import cases as console_cases
from vssid_broker.web.staff.console import import_runs as console_import_runs
from vssid_broker.web.staff.console import people as console_people
from vssid_broker.web.staff.console import requests as console_requests
from vssid_broker.web.staff.console import sign_in as console_sign_in
from vssid_broker.web.staff.console import staff as console_staff

ROUTERS = (
    pages.router,
    privacy_pages.router,
    app_login.router,
    tokens.router,
    me.router,
    requests.router,
    requests.demo_router,
    account_requests.router,
    # the staff: the admin API, then the console's pages (see `vssid_broker.web.staff`)
    sign_in.router,
    cases.router,
    people.router,
    audit.router,
    unlinking.router,
    staff_users.router,
    staff_requests.router,
    import_runs.router,
    console_sign_in.router,
    console_cases.router,
    console_people.router,
    console_requests.router,
    console_audit.router,
    console_staff.router,
    console_import_runs.router,
    docs.router,
)
"""Every router, by caller (see `vssid_broker.web`)."""


BUSIEST_ROUTES = (
    "/api/v1/auth/token",  # every app refreshes every few minutes
    "/api/v1/me",
    "/healthz",
    "/readyz",
    "/.well-known/jwks.json",
    "/api/v1/auth/vneid/start",
    "/api/v1/auth/vneid/complete",
    "/auth/vneid/login",
    "/auth/vneid/callback",
    "/account",
    "/api/v1/auth/introspect",
    "/metrics",
)
"""The paths most requests ask for, most frequent first: Starlette's router tries its routes
one by one (a regular expression and a scope copy each), and the refresh grant used to be
the 27th."""


def busiest_first(routes: list[BaseRoute]) -> list[BaseRoute]:
    """`BUSIEST_ROUTES` first, then every other route in the order it was registered. Only
    fixed paths that no other route matches are moved, so the order decides nothing: each
    request reaches the route it reached before (checked here, at start-up)."""
    rank = {path: place for place, path in enumerate(BUSIEST_ROUTES)}
    busiest = sorted(
        (route for route in routes if getattr(route, "path", None) in rank),
        key=lambda route: rank[getattr(route, "path", "")],
    )
    rest = [route for route in routes if getattr(route, "path", None) not in rank]
    for route in busiest:
        path = getattr(route, "path", "")
        others = [r for r in rest if isinstance(r, Route | Mount) and r.path_regex.match(path)]
        if "{" in path or others:
            raise RuntimeError(f"{path} is not a path of one route alone; it cannot move first")
    return busiest + rest


def build_context(
    settings: Settings,
    *,
    provider_http: OutboundClient | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> BrokerContext:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pre_ping=settings.database_pre_ping,
    )
    count_pool_use(engine)
    db = session_factory(engine)
    autocommit = autocommit_session_factory(engine)
    key_encryption_key = load_key_encryption_key(settings)
    keys = SigningKeys(settings, key_encryption_key)
    passwords.set_hash_threads(settings.password_hash_threads)
    passwords.use_profile(settings.password_hash_profile)
    # Kept right by PostgreSQL's notifications; SQLite (one process, the demo) asks every time.
    live_sessions = (
        LiveSessionCache(settings.session_cache_size, settings.session_cache_max_age_seconds)
        if engine.dialect.name == "postgresql" and settings.session_cache_size > 0
        else None
    )

    async def sign_client_assertion(claims: dict[str, Any]) -> str:
        # private_key_jwt uses the broker's published keys: VNeID registers our JWKS URL.
        async with db() as session:
            key = await keys.active(session, clock())
        return jwt.encode({"alg": key.alg, "kid": key.kid}, claims, key.private, [key.alg])

    provider = ProviderClient(settings, provider_http, sign_client_assertion)
    return BrokerContext(
        settings=settings,
        engine=engine,
        db=db,
        autocommit=autocommit,
        provider=provider,
        profile=profile_for(settings, provider),
        keys=keys,
        access_tokens=AccessTokens(settings, keys, live_sessions),
        refresh_tokens=RefreshTokens(
            settings, derive_key(key_encryption_key.raw_value, "refresh successors"), live_sessions
        ),
        rate_limits=RateLimits(settings, derive_key(key_encryption_key.raw_value, "rate limits")),
        live_sessions=live_sessions,
        clock=clock,
        sms=DemoSmsSender(),  # the only sender so far: VSSID_SMS_SENDER=demo
        phone_code_key=derive_key(key_encryption_key.raw_value, "phone codes"),
    )


class BrokerApp(FastAPI):
    """FastAPI with one request middleware (`web.middleware.BrokerRequests`) around the router,
    in place of the framework's stack of error, body-limit and exit-stack layers and ours."""

    def __init__(
        self, *, settings: Settings, listener: LiveSessionListener | None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.broker_settings = settings
        self.listener = listener

    def build_middleware_stack(self) -> ASGIApp:
        handlers = {
            key: handler
            for key, handler in self.exception_handlers.items()
            if key not in (500, Exception)
        }
        app: ASGIApp = BrokerRequests(
            self.router,
            settings=self.broker_settings,
            exception_handlers={k: h for k, h in handlers.items() if not isinstance(k, int)},
            status_handlers={k: h for k, h in handlers.items() if isinstance(k, int)},
            error_handler=cast(ErrorHandler, self.exception_handlers[Exception]),
            listener=self.listener,
        )
        if self.broker_settings.opentelemetry:
            # FastAPI's own layer that shows a failed request's exception to its span.
            from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware

            app = ExceptionTelemetryMiddleware(app)
        return app


def create_app(
    settings: Settings | None = None,
    *,
    provider_http: OutboundClient | None = None,
    clock: Callable[[], datetime] = utcnow,
    tracer_provider: Any = None,
) -> FastAPI:
    """`tracer_provider`: an OpenTelemetry TracerProvider to use instead of the global one
    configured from `OTEL_*` (tests hand in one with an in-memory exporter)."""
    settings = settings or Settings()
    if settings.opentelemetry and importlib.util.find_spec("opentelemetry.sdk") is None:
        raise RuntimeError(
            "VSSID_OPENTELEMETRY=true needs the tracing packages: pip install 'vssid-broker[otel]'"
        )
    ctx = build_context(settings, provider_http=provider_http, clock=clock)
    listener = None
    if ctx.live_sessions is not None:
        listener = LiveSessionListener(
            ctx.live_sessions, ctx.engine, settings.session_cache_listen_url
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await schema.require_current_schema(ctx.engine)
        # Process-wide: the sealed-column type has no other way to reach them (sealing.py).
        sealing.install(sealing.CitizenIdKeys.from_settings(settings))
        chain.install(chain.ChainKeys.from_settings(settings))
        await passwords.prepare_dummy_hash()
        async with ctx.db() as session:
            await ctx.keys.require_openable(session)
        async with ctx.db.begin() as session:
            await ctx.keys.ensure_active(session, ctx.clock())
        if listener is not None:
            listener.start()
        yield
        if listener is not None:
            await listener.stop()
        await ctx.provider.aclose()
        await ctx.engine.dispose()

    app = BrokerApp(
        settings=settings,
        listener=listener,
        title="vssid-broker",
        version=__version__,
        summary="Sign in to VssID with a level-2 VNeID account",
        lifespan=lifespan,
        docs_url=None,  # web/docs.py serves /docs from local files
        redoc_url=None,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
            # Export over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
            "auto_configure": settings.opentelemetry,
            "tracer_provider": tracer_provider,
        },
    )
    app.state.broker = ctx

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_api_route("/readyz", operations.readiness, include_in_schema=False)

    if settings.metrics_enabled:
        app.add_api_route("/metrics", operations.prometheus_metrics, include_in_schema=False)

    problems.install(app, database_retry_after=settings.database_outage_retry_after_seconds)
    console_base.install(app)
    for router in ROUTERS:
        # Each route already carries its full path, its router's dependencies and tags.
        # `include_router` would have FastAPI (0.165) re-derive every included router's route
        # list on every request while matching: ~280 µs of CPU to walk them all for an
        # unknown path, a tenth of a token refresh (docs/performance.md).
        app.router.routes.extend(router.routes)
    openapi.install(app, documented_order=[getattr(route, "path", "") for route in app.routes])
    app.router.routes[:] = busiest_first(app.router.routes)
    app.mount("/static/docs", StaticFiles(directory=docs.SWAGGER_UI_ASSETS), "swagger-ui")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), "static")
    return app
