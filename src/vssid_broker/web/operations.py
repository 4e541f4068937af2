"""What operators' tools call: `/readyz` and the Prometheus metrics (`/healthz` is in app.py).

Neither fails because a shared dependency is down. Every pod shares the one database and the
one Redis, so an outage of either would take every pod out of its Service at once and people
would meet the ingress's error instead of the broker's own 503 page; and Prometheus would lose
every pod's metrics exactly when they matter. The outage is told instead: in `/readyz`'s body
and in `vssid_dependency_up` / `vssid_rate_limits_enforced`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import Request, Response
from sqlalchemy import text

from vssid_broker import metrics
from vssid_broker.context import BrokerContext
from vssid_broker.db import database_unreachable
from vssid_broker.linking.review import pending_queue

DEPENDENCY_CHECK_SECONDS = 1.0
"""Well inside the probes' 2-second timeout: a hanging database still gets an answer."""


async def _review_queue(ctx: BrokerContext) -> tuple[int, datetime | None]:
    # Autocommit: cut off by the scrape's time limit, it leaves no transaction open behind it.
    async with ctx.autocommit() as session:
        return await pending_queue(session)


async def _database_reached(ctx: BrokerContext) -> bool:
    async def ask() -> None:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ask(), DEPENDENCY_CHECK_SECONDS)
    except TimeoutError:
        reached = False
    except Exception as error:
        if not database_unreachable(error):
            raise
        reached = False
    else:
        reached = True
    metrics.dependency_reached("database", up=reached)
    return reached


async def readiness(request: Request) -> dict[str, str]:
    """200 whenever this process answers; the body names what it cannot reach."""
    ctx: BrokerContext = request.app.state.broker
    database = await _database_reached(ctx)
    return {
        "status": "ready",
        "database": "ok" if database else "unreachable",
        "rate_limits": "enforced" if ctx.rate_limits.enforced else "not enforced",
    }


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; the review queue is read from the database at each scrape, and
    when the database cannot be reached the rest is still answered, `vssid_dependency_up`
    saying so."""
    ctx: BrokerContext = request.app.state.broker
    try:
        pending, oldest = await asyncio.wait_for(_review_queue(ctx), DEPENDENCY_CHECK_SECONDS)
    except TimeoutError:
        metrics.dependency_reached("database", up=False)
    except Exception as error:
        if not database_unreachable(error):
            raise
        metrics.dependency_reached("database", up=False)
    else:
        metrics.dependency_reached("database", up=True)
        metrics.REVIEW_QUEUE_PENDING.set(pending)
        age = (ctx.clock() - oldest).total_seconds() if oldest is not None else 0.0
        metrics.REVIEW_QUEUE_OLDEST_AGE.set(max(age, 0.0))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
