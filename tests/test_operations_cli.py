"""The command line as an operator meets it: a version, help for every option, quiet
migrations, progress on long work, and a demo that survives a change of ports."""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import httpx

from tests.support.http import TLS, Client
from tests.support.live_server import free_port
from tests.test_cli import cli_env, run_cli, running
from vssid_broker import __version__
from vssid_broker.cli import build_parser
from vssid_broker.vneid_sim.driver import sign_in_at_vneid_sync


def test_version(tmp_path: Path) -> None:
    shown = run_cli("--version", env=cli_env(tmp_path), cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.strip() == f"vssid-broker {__version__}"


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += all_parsers(child)
    return found


def test_every_option_of_every_command_has_help_and_shows_its_default() -> None:
    for parser in all_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{parser.prog} {action.dest} has no help"
        text = parser.format_help()
        for action in parser._actions:
            shown = action.option_strings and action.help != argparse.SUPPRESS
            if shown and action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in " ".join(text.split()), (
                    parser.prog,
                    action.dest,
                )


def test_migrate_says_the_result_and_only_with_verbose_each_step(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    quiet = run_cli("migrate", env=env, cwd=tmp_path)
    assert quiet.returncode == 0
    assert "database at revision" in quiet.stdout
    assert "alembic" not in quiet.stdout + quiet.stderr
    run_cli("migrate", "--downgrade", "--revision", "base", env=env, cwd=tmp_path)
    verbose = run_cli("--verbose", "migrate", env=env, cwd=tmp_path)
    assert "Running upgrade" in verbose.stderr


def test_bulk_seed_shows_progress_with_rate_and_eta(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    seeded = run_cli("seed", "--accounts", "25000", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "25000/25000" in seeded.stdout
    assert "accounts/s" in seeded.stdout and "ETA" in seeded.stdout
    assert "bulk accounts added: 25000" in seeded.stdout


def sign_in(broker: str, citizen_id: str) -> None:
    with Client() as browser:
        start = browser.get(f"{broker}/auth/vneid/login")
        back = sign_in_at_vneid_sync(browser, start.headers["location"], citizen_id)
        assert browser.get(back).status_code == 302
        assert browser.get(f"{broker}/account").status_code == 200


def test_a_demo_restarted_on_other_ports_keeps_its_linked_citizens(tmp_path: Path) -> None:
    """The simulated VNeID's issuer is its URL: on a new port the same citizens come back under
    a new issuer, and must still find their links instead of opening review cases."""
    env = cli_env(tmp_path)
    database = tmp_path / "cli.sqlite3"

    def pending_cases() -> int:
        with sqlite3.connect(database) as db:
            query = "SELECT count(*) FROM review_cases WHERE status = 'pending'"
            row = db.execute(query).fetchone()
        return int(row[0])

    for _ in range(2):
        port, sim_port = free_port(), free_port()
        broker = f"http://127.0.0.1:{port}"
        with running(
            "demo",
            "--port",
            str(port),
            "--sim-port",
            str(sim_port),
            env=env,
            cwd=tmp_path,
            ready_url=f"{broker}/readyz",
        ):
            before = pending_cases()
            sign_in(broker, "001085012345")
            assert pending_cases() == before
    with sqlite3.connect(database) as db:
        providers = {row[0] for row in db.execute("SELECT provider FROM federated_links")}
    assert providers == {f"http://127.0.0.1:{sim_port}"}


def test_metrics_add_up_every_worker_of_serve(tmp_path: Path) -> None:
    """`serve --workers 2`: a scrape reaches one worker, yet counts what both served, and
    shows each worker's process metrics (CPU, memory) by its pid."""
    from prometheus_client.parser import text_string_to_metric_families

    def worker_pids(text: str) -> set[str]:
        return {
            sample.labels["pid"]
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "process_resident_memory_bytes" and sample.value > 0
        }

    env = cli_env(tmp_path)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(
        "serve", "--port", str(port), "--workers", "2", env=env, cwd=tmp_path, ready_url=url
    ):
        # The first worker answers before the second has started on a loaded machine: wait
        # until both have (each shows its own process metrics), or fail on the last scrape.
        deadline = time.monotonic() + 60
        while len(worker_pids(httpx.get(f"{url}/metrics", verify=TLS).text)) < 2:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with Client() as client:
            for _ in range(40):  # new connections: the kernel spreads them over both workers
                client.get(f"{url}/healthz", headers={"Connection": "close"})
        text = httpx.get(f"{url}/metrics", verify=TLS).text
    served = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "vssid_http_requests_total" and sample.labels["route"] == "/healthz"
    ]
    assert served == [40.0]
    assert len(worker_pids(text)) == 2


def test_postgresql_without_its_driver_says_which_extra_to_install(tmp_path: Path) -> None:
    """asyncpg is the `[postgresql]` extra; without it, one line says what to install."""
    script = (
        "import sys; sys.modules['asyncpg'] = None; "
        "from vssid_broker.cli import main; "
        "main(['migrate'])"
    )
    env = cli_env(tmp_path, VSSID_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    import subprocess
    import sys

    ran = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert ran.returncode != 0
    assert "pip install 'vssid-broker[postgresql]'" in ran.stderr
    assert "Traceback" not in ran.stderr
