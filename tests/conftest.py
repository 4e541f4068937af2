"""Shared fixtures: a migrated test database, the simulated VNeID and the broker on real ports.

Both servers run for the whole session on loopback (real HTTP between them); every test
starts from the demo accounts and no links, sessions or tokens.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.clock import MovableClock
from tests.support.database import empty_data_tables, suite_database
from tests.support.http import AsyncClient
from tests.support.live_server import free_port, live_server
from tests.support.recording import RecordingTransport
from tests.support.redis_server import SuiteRedis, suite_redis
from vssid_broker import schema
from vssid_broker.app import create_app
from vssid_broker.audit import chain
from vssid_broker.config import ServiceClient, Settings
from vssid_broker.context import BrokerContext
from vssid_broker.db import create_engine, session_factory
from vssid_broker.sealing import CitizenIdKeys, install
from vssid_broker.seeding.demo_accounts import seed_demo
from vssid_broker.vneid_sim.app import create_app as create_sim_app
from vssid_broker.vneid_sim.config import SimSettings, demo_clients_for_broker

SERVICE_CLIENT = ServiceClient(
    client_id="vssid-claims-service", client_secret="claims-service-test-secret-0123456789"
)
"""Another VssID service allowed to introspect tokens."""


SUITE_SETTINGS: dict[str, object] = {
    # Tests of reuse detection present a spent token at once; the grace window for a lost
    # answer has its own tests (tests/sessions/test_refresh_grace.py).
    "refresh_token_grace_seconds": 0,
    # argon2id at its least cost: the suite hashes and checks hundreds of passwords, each
    # ~115 ms of CPU at the production parameters (which tests/test_cli.py's staff test uses).
    "password_hash_profile": "cheapest-for-tests",
}
GENEROUS_RATE_LIMITS: dict[str, str] = {
    "rate_limit_password_per_ip": "10000/minute",
    "rate_limit_password_per_identifier": "10000/minute",
    "rate_limit_password_per_ip_and_identifier": "10000/minute",
    "rate_limit_login_start_per_ip": "10000/minute",
    "rate_limit_token_per_ip": "10000/minute",
}


# With several workers (pytest-xdist, `python3 dev.py test`), the longest tests are handed out
# first and two at a time, so that at the end no worker runs a long test alone while the
# others wait. Each worker has its own servers, ports, database and Redis.
LONGEST_FIRST = (
    "tests/test_audit_anchors.py::test_the_anchor_and_verify_commands_as_an_operator_runs_them",
    "tests/test_bench_smoke.py",
    "tests/accounts/test_import.py::test_an_import_killed_mid_merge",
    "tests/test_privacy_cli.py",
    "tests/browser/test_no_internal_names.py",
    "tests/test_openapi_contract.py",
    "tests/test_cli.py",
    "tests/test_key_encryption_key.py",
    "tests/browser/test_api_docs.py",
    "tests/test_operations_cli.py",
    "tests/test_tracing.py::test_serve_exports_spans_over_otlp",
    "tests/test_rate_limits.py::test_two_processes",
    "tests/accounts/test_import_command.py",
    "tests/e2e/test_two_processes.py",
    "tests/test_database_roles.py",
    "tests/browser/",
    "tests/test_packaging.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk") is None:
        config.option.maxschedchunk = 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        starts = (i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix))
        return next(starts, len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: the rest keeps its order


@pytest.fixture(scope="session")
def tmp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("broker")


@pytest.fixture(scope="session")
def redis_for_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRedis]:
    """Redis for the tests of shared counters: the suite's own server (or the one
    `VSSID_TEST_REDIS_URL` names, under this run's key prefix), tests/support/redis_server.py."""
    with suite_redis(tmp_path_factory.mktemp("redis")) as redis:
        yield redis


@pytest.fixture(scope="session")
async def database_url(tmp_dir: Path) -> AsyncIterator[str]:
    """A database of the run's own, dropped at the end (tests/support/database.py)."""
    async with suite_database(tmp_dir) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await schema.upgrade_engine(engine)  # a new database: the migrations start from nothing
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def db(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture(scope="session")
def broker_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sim_outbound() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture(scope="session")
def sim_url(broker_port: int, sim_outbound: RecordingTransport) -> Iterator[str]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    # The broker under test runs on its own port: registered there, as the demo does.
    clients = demo_clients_for_broker(f"http://127.0.0.1:{broker_port}")
    settings = SimSettings(issuer=issuer, test_mode=True, clients=clients)
    with live_server(create_sim_app(settings, outbound_transport=sim_outbound), port) as url:
        yield url


@pytest.fixture(scope="session")
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(scope="session")
def broker_settings(database_url: str, sim_url: str, tmp_dir: Path, broker_port: int) -> Settings:
    return Settings(
        database_url=database_url,
        public_base_url=f"http://127.0.0.1:{broker_port}",
        vneid_issuer=sim_url,
        vneid_http_timeout_seconds=1.5,  # short, so the slow-provider test stays quick
        key_encryption_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        key_encryption_key_file=tmp_dir / "unused.key",
        blind_index_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        blind_index_key_file=tmp_dir / "unused-index.key",
        service_clients=[SERVICE_CLIENT],
        # The suite signs in many times from 127.0.0.1: limits no test reaches by accident
        # (tests/test_rate_limits.py checks the limits with their own settings).
    ).model_copy(update=GENEROUS_RATE_LIMITS | SUITE_SETTINGS)


@pytest.fixture(scope="session", autouse=True)
def citizen_id_keys(broker_settings: Settings) -> CitizenIdKeys:
    """The broker's citizen-ID keys, installed before any test seeds or reads an account."""
    keys = CitizenIdKeys.from_settings(broker_settings)
    install(keys)
    chain.install(chain.ChainKeys.from_settings(broker_settings))
    return keys


@pytest.fixture(scope="session")
def broker_app(broker_settings: Settings, clock: MovableClock) -> FastAPI:
    return create_app(broker_settings, clock=clock)


@pytest.fixture(scope="session")
def broker_url(
    broker_app: FastAPI, broker_settings: Settings, engine: AsyncEngine, broker_port: int
) -> Iterator[str]:
    with live_server(broker_app, broker_port) as url:
        yield url


@dataclass
class Stack:
    """The running system as a test sees it."""

    broker: str
    sim: str
    settings: Settings
    db: async_sessionmaker[AsyncSession]
    clock: MovableClock
    ctx: BrokerContext
    """The running broker's own context (its key cache, token service), for rotation tests."""
    sim_outbound: RecordingTransport
    """What the simulated VNeID sent to the broker (back-channel logout), in this test."""

    async def fault(self, name: str, times: int = 1, delay_seconds: float = 0) -> None:
        async with AsyncClient() as client:
            response = await client.post(
                f"{self.sim}/_test/faults",
                json={"fault": name, "times": times, "delay_seconds": delay_seconds},
            )
            response.raise_for_status()

    @contextlib.contextmanager
    def broker_with(self, **overrides: Any) -> Iterator[str]:
        """Another broker process (in this one) on the same database and VNeID, with some
        settings changed; yields its URL (also its public URL, so DPoP proofs name it)."""
        port = free_port()
        own = {"public_base_url": f"http://127.0.0.1:{port}"}
        settings = Settings(**(self.settings.model_dump() | own | overrides))
        with live_server(create_app(settings, clock=self.clock), port) as url:
            yield url

    async def count(self, model: type) -> int:
        async with self.db() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
async def stack(
    broker_url: str,
    sim_url: str,
    broker_settings: Settings,
    engine: AsyncEngine,
    db: async_sessionmaker[AsyncSession],
    clock: MovableClock,
    broker_app: FastAPI,
    sim_outbound: RecordingTransport,
) -> AsyncIterator[Stack]:
    await empty_data_tables(engine)
    async with db.begin() as session:
        await seed_demo(session)
    clock.reset()
    await broker_app.state.broker.rate_limits.reset()
    async with AsyncClient() as client:
        await client.delete(f"{sim_url}/_test/faults")
        # Whom VNeID remembers as signed in decides which clients hear of a logout: each test
        # starts with no one, whatever ran before it on this worker.
        await client.delete(f"{sim_url}/_test/sign-ins")
    sim_outbound.sent.clear()
    yield Stack(
        broker_url, sim_url, broker_settings, db, clock, broker_app.state.broker, sim_outbound
    )
