"""docker-compose.yml and the Dockerfile describe the production path: they must name commands that exist."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from hotline.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _hotline_commands(command: list[str]) -> list[list[str]]:
    """The `hotline …` invocations in a compose command (plain argv or `sh -c "a && b"`)."""
    parts = [shlex.split(p) for p in command[2].split("&&")] if command[:2] == ["sh", "-c"] else [command]
    return [p[1:] for p in parts if p and p[0] == "hotline"]


def test_every_compose_service_runs_a_real_hotline_command() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    parser = build_parser()
    seen = 0
    for name, service in compose["services"].items():
        for argv in _hotline_commands(service.get("command", [])):
            parser.parse_args(argv)  # exits (fails the test) on an unknown command or option
            seen += 1
        if name in ("api", "worker", "migrate"):
            env = service["environment"]
            assert env["HOTLINE_DATABASE_URL"].startswith("postgresql+psycopg://"), name
            assert env["HOTLINE_REDIS_URL"].startswith("redis://"), name
    assert seen >= 4


def test_compose_never_ships_a_default_secret() -> None:
    env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["api"]["environment"]
    assert ":?" in env["HOTLINE_SECRET_KEY"] and ":?" in env["HOTLINE_CHANNEL_KEYS"]


def test_the_image_copies_every_package_it_installs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("hotline", "routing", "nlp", "agent_ui", "wechat_bot", "channels", "migrations"):
        assert f"COPY {package} " in dockerfile, package


def _probed_url(service: dict[str, object]) -> str:
    """The URL a compose healthcheck opens (``python -c "…urlopen('URL')"``)."""
    healthcheck = service["healthcheck"]
    assert isinstance(healthcheck, dict)
    test = healthcheck["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return str(test[3]).split("urlopen('", 1)[1].split("'", 1)[0]


def test_compose_calls_the_api_healthy_only_when_it_is_ready_and_probes_the_workers_metrics_port() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    api_port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert _probed_url(services["api"]) == f"http://127.0.0.1:{api_port}/readyz"
    worker_env = services["worker"]["environment"]
    assert worker_env["HOTLINE_DATABASE_URL"] == services["api"]["environment"]["HOTLINE_DATABASE_URL"]
    port = int(worker_env["HOTLINE_WORKER_METRICS_PORT"])
    assert _probed_url(services["worker"]) == f"http://127.0.0.1:{port}/metrics"
    assert "ports" not in services["worker"], "the worker's metrics are unauthenticated: never publish them"
    for name in ("api", "worker"):
        assert services[name]["healthcheck"]["retries"] >= 3, name

