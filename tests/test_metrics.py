"""`/metrics`: what an operator's Prometheus reads moves when logins, refreshes and refusals
happen, over real HTTP against the running broker."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(stack: Stack) -> Samples:
    async with AsyncClient() as client:
        response = await client.get(f"{stack.broker}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_logins_refreshes_and_reuse_are_counted(stack: Stack) -> None:
    before = await scrape(stack)
    async with AsyncClient() as app:
        done = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "001085012345")
        )
        assert done.status_code == 200
        spent = done.json()["refresh_token"]
        refreshed = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": spent},
        )
        assert refreshed.status_code == 200
        reused = await app.post(
            f"{stack.broker}/api/v1/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": spent},
        )
        assert reused.status_code == 400
        # Level 1 only: VNeID refuses before consent (essential acr), the app forwards that.
        refused = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "079190123456")
        )
        assert refused.status_code >= 400
        refusal_code = refused.json()["code"]
    after = await scrape(stack)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(after, name, **labels) - value(before, name, **labels) == by

    assert grew("vssid_logins_started_total", 2, channel="app")
    assert grew("vssid_logins_finished_total", channel="app", outcome="succeeded")
    assert grew("vssid_logins_finished_total", channel="app", outcome=refusal_code)
    assert grew("vssid_login_duration_seconds_count", 2, channel="app")
    assert grew("vssid_vneid_request_duration_seconds_count", 1, endpoint="token")
    assert grew("vssid_refresh_rotations_total")
    assert grew("vssid_refresh_reuse_detections_total")
    assert grew("vssid_revocations_total", reason="refresh_reuse")
    assert grew("vssid_refusals_total", code="invalid_grant")
    assert grew(
        "vssid_http_requests_total", route="/api/v1/auth/token", method="POST", status="200"
    )
    assert value(after, "vssid_db_pool_capacity") > 0


async def test_the_review_queue_age_is_read_at_each_scrape(stack: Stack) -> None:
    empty = await scrape(stack)
    assert value(empty, "vssid_review_queue_pending") == 0
    async with AsyncClient() as app:
        # Level 2 whose VssID record has no citizen ID yet: a review case opens.
        await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, "031188004567")
        )
    stack.clock.advance(seconds=3600)
    waiting = await scrape(stack)
    assert value(waiting, "vssid_review_queue_pending") == 1
    assert value(waiting, "vssid_review_queue_oldest_age_seconds") >= 3600
    assert value(waiting, "vssid_review_cases_opened_total", reason="name_birthdate_match") >= 1
