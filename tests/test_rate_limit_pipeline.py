"""Counts that arrive together share one Redis round trip (`rate_limits._PipelinedCounts`),
and still count exactly as the `limits` library counts them one by one."""

from __future__ import annotations

import asyncio

from tests.conftest import Stack
from tests.support.redis_server import SuiteRedis
from vssid_broker.rate_limits import RateLimits


def limits_on(stack: Stack, redis: SuiteRedis, name: str) -> RateLimits:
    settings = stack.settings.model_copy(
        update={
            "rate_limit_storage": redis.url,
            "rate_limit_key_prefix": redis.prefix_for(name),
            "rate_limit_token_per_ip": "10/minute",
        }
    )
    return RateLimits(settings, b"k" * 32)


async def test_counts_sent_together_let_exactly_the_limit_through(
    stack: Stack, redis_for_tests: SuiteRedis
) -> None:
    limits = limits_on(stack, redis_for_tests, "pipelined-together")
    rule = limits.rules.token_per_ip
    answers = await asyncio.gather(*(limits.hit(rule, "198.51.100.7") for _ in range(25)))
    assert answers[:10] == [None] * 10  # counted in the order they came
    assert all(retry_after is not None and retry_after >= 1 for retry_after in answers[10:])
    # Another address has counts of its own; the library's own read sees the spent limit.
    assert await limits.hit(rule, "198.51.100.8") is None
    assert await limits.exceeded(rule, "198.51.100.7") is not None
    assert limits.enforced


async def test_pipelined_counts_answer_as_the_library_counting_one_by_one(
    stack: Stack, redis_for_tests: SuiteRedis
) -> None:
    pipelined = limits_on(stack, redis_for_tests, "pipelined-compared")
    one_by_one = limits_on(stack, redis_for_tests, "one-by-one-compared")
    one_by_one._batch = None
    rule = pipelined.rules.token_per_ip
    addresses = ["203.0.113.1", "203.0.113.2", "203.0.113.1"] * 6
    together = await asyncio.gather(*(pipelined.hit(rule, a) for a in addresses))
    in_turn = [await one_by_one.hit(rule, a) for a in addresses]
    assert [answer is None for answer in together] == [answer is None for answer in in_turn]
    assert redis_for_tests.keys(redis_for_tests.prefix_for("pipelined-compared"))
