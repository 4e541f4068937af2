"""The suite owns its data: it runs in a database it created and counts in a Redis of its
own (or under its own key prefix), so a developer's databases and keys survive a run."""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import EXPLICIT_URL, NAME_PREFIX
from tests.support.redis_server import SuiteRedis


async def test_the_suite_runs_in_a_database_it_created(engine: AsyncEngine) -> None:
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            current = await connection.scalar(text("SELECT current_database()"))
        assert current.startswith(NAME_PREFIX)
        assert current != make_url(os.environ[EXPLICIT_URL]).database
    else:
        database = make_url(str(engine.url)).database
        assert database is not None and database.endswith("broker-test.sqlite3")
        assert database != make_url(os.environ.get(EXPLICIT_URL) or "sqlite://").database


def test_redis_is_the_suites_own_or_its_keys_are_prefixed(redis_for_tests: SuiteRedis) -> None:
    assert redis_for_tests.own_server is not bool(os.environ.get("VSSID_TEST_REDIS_URL"))
    assert redis_for_tests.key_prefix.startswith("vssid-test-")
    assert redis_for_tests.keys(), "the run's own sentinel key, looked for at the end"
