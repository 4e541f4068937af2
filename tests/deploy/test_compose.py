"""docker-compose.yml: each long-running service is probed on its own port, Redis is there
for the rate limits, and the commands it runs are real commands."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from vssid_broker.cli import build_parser
from vssid_broker.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(compose["services"])


def test_the_simulator_is_probed_on_its_own_port_not_the_brokers() -> None:
    sim = services()["vneid-sim"]
    port = sim["command"][sim["command"].index("--port") + 1]
    probe = " ".join(sim["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/" in probe and ":8000" not in probe
    assert services()["migrate"]["healthcheck"] == {"disable": True}
    assert services()["broker"]["depends_on"]["vneid-sim"] == {"condition": "service_healthy"}


def test_redis_runs_and_the_broker_is_pointed_at_it() -> None:
    redis = services()["redis"]
    host_port = redis["ports"][0].split(":")[1]
    url = services()["broker"]["environment"]["VSSID_RATE_LIMIT_STORAGE"]
    assert url.startswith(f"redis://127.0.0.1:{host_port}/")
    assert services()["broker"]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_every_broker_command_it_runs_exists() -> None:
    parser = build_parser()
    for name in ("migrate", "broker", "vneid-sim"):
        command = services()[name]["command"]
        line = command[2] if command[:2] == ["sh", "-c"] else shlex.join(command)
        for part in line.split("&&"):
            words = shlex.split(part)
            assert words[0] == "vssid-broker"
            parser.parse_args(words[1:])


def test_the_broker_serves_as_the_role_migrate_grants_not_as_the_owner() -> None:
    owner_url = services()["migrate"]["environment"]["VSSID_DATABASE_URL"]
    broker_url = services()["broker"]["environment"]["VSSID_DATABASE_URL"]
    owner = owner_url.split("//")[1].split(":")[0]
    role = broker_url.split("//")[1].split(":")[0]
    assert role != owner
    granted = shlex.split(services()["migrate"]["command"][2].split("&&")[1])
    assert granted[1:3] == ["db", "grant"] and granted[granted.index("--service-role") + 1] == role


def test_every_broker_setting_it_sets_is_one_the_broker_reads() -> None:
    # A misspelt name is silently ignored by the broker: the compose file would lie.
    known = {f"VSSID_{name.upper()}" for name in Settings.model_fields}
    for name in ("migrate", "broker"):
        environment = services()[name]["environment"]
        assert {key for key in environment if key.startswith("VSSID_")} <= known, name
