"""What operators' tools call besides `/healthz` and `/readyz`: the Prometheus metrics."""

from __future__ import annotations

from fastapi import Request, Response

from vssid_broker import metrics
from vssid_broker.context import BrokerContext
from vssid_broker.linking.review import pending_queue


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; the review queue is read from the database at each scrape."""
    ctx: BrokerContext = request.app.state.broker
    async with ctx.db() as session:
        pending, oldest = await pending_queue(session)
    metrics.REVIEW_QUEUE_PENDING.set(pending)
    age = (ctx.clock() - oldest).total_seconds() if oldest is not None else 0.0
    metrics.REVIEW_QUEUE_OLDEST_AGE.set(max(age, 0.0))
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
