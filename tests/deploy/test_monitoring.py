"""deploy/monitoring: every metric the alert rules and the Grafana dashboard name is one the
running broker exports at /metrics, so no alert watches a metric that never comes; the rules
are valid for Prometheus and each one fires on synthetic series when it should and stays quiet
when it should not (`promtool test rules` with alerts-test.yaml and, for the alerts that
look a day back, alerts-test-daily.yaml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.support.http import AsyncClient
from vssid_broker.audit import anchors

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
TEST_FILES = ("alerts-test.yaml", "alerts-test-daily.yaml")
"""promtool's tests of the rules: the second steps five minutes at a time (it says why)."""
METRIC_NAME = re.compile(r"\b(?:vssid|process|python)_[a-z0-9_]+\b")
PUSHED = {anchors.WRITTEN_METRIC}
"""Pushed to the Pushgateway by the `audit anchor` CronJob, not exported by /metrics."""
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
    async with AsyncClient() as client:
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
        missing = named - exported - PUSHED
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
        "VssidBrokerDown",
        "VssidLatencyHigh",
        "VssidLoginRefusalsRising",
        "VssidDatabaseUnreachable",
        "VssidRateLimitsOff",
        "VssidVneidKeysUnfetchable",
        "VssidAuditAnchorStale",
        "VssidDatabaseBackupStale",
        "VssidWalArchivingFailing",
    } <= alerts


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("the monitoring tests need promtool (Debian: apt-get install -y prometheus)")
    return subprocess.run(  # noqa: S603 - promtool, with our own files
        [tool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", str(MONITORING / "alerts.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_and_stays_quiet_on_synthetic_series_as_its_tests_say() -> None:
    tested = promtool("test", "rules", *(str(MONITORING / name) for name in TEST_FILES))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = [
        case
        for name in TEST_FILES
        for case in yaml.safe_load((MONITORING / name).read_text())["tests"]
    ]
    fired = {
        test["alertname"]
        for case in cases
        for test in case["alert_rule_test"]
        if test["exp_alerts"]
    }
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]
    assert {rule["alert"] for group in rules for rule in group["rules"]} == fired


def test_a_rule_that_no_longer_fires_fails_its_test(tmp_path: Path) -> None:
    # The database alert made blind (a threshold no gauge reaches): promtool must say so.
    alerts = (MONITORING / "alerts.yaml").read_text()
    blind = alerts.replace('max(vssid_dependency_up{dependency="database"}) == 0', "vector(0) == 1")
    assert blind != alerts
    (tmp_path / "alerts.yaml").write_text(blind)
    shutil.copy(MONITORING / "alerts-test.yaml", tmp_path)
    tested = promtool("test", "rules", str(tmp_path / "alerts-test.yaml"))
    assert tested.returncode != 0
    assert "VssidDatabaseUnreachable" in tested.stdout + tested.stderr
