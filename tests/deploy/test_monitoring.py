"""deploy/monitoring: every metric the alert rules and the Grafana dashboard name is one the
running broker exports at /metrics, so no alert watches a metric that never comes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
METRIC_NAME = re.compile(r"\b(?:vssid|process|python)_[a-z0-9_]+\b")
QUOTED = re.compile(r'"[^"]*"')
"""Label values (an outcome code like vssid_account_required) are not metric names."""
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def exported_names(stack: Stack) -> set[str]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{stack.broker}/metrics")).text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


async def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(stack: Stack) -> None:
    exported = await exported_names(stack)
    for source, expressions in (
        ("alerts.yaml", alert_expressions()),
        ("grafana-dashboard.json", dashboard_expressions()),
    ):
        named = {
            name
            for expression in expressions
            for name in METRIC_NAME.findall(QUOTED.sub("", expression))
        }
        assert named, source
        missing = named - exported
        assert not missing, f"{source} names metrics /metrics does not export: {missing}"


def test_the_alerts_cover_what_operators_asked_for() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert {
        "VssidLoginFailureRatioHigh",
        "VssidVneidUnavailable",
        "VssidRefreshReuseSpike",
        "VssidReviewQueueAgeing",
        "VssidServerErrors",
    } <= alerts
