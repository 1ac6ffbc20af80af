"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The file is validated against the Compose Specification's JSON Schema (vendored, see
tests/samples/compose-spec/SOURCE.md) and every portalbridge service's command must be a real
``portalbridge`` subcommand, parsed by the CLI's own argument parser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from engine.cli import _parser
from engine.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "samples" / "compose-spec" / "compose-spec.json"
LONG_RUNNING = {"listen": {"listen"}, "api": {"api"}, "worker": {"worker", "enrollment"},
                "relay": {"relay"}, "notifier": {"notifier"}}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    return loaded


def portalbridge_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items()
            if service.get("image", "").startswith("portalbridge")}


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    errors = sorted(Draft201909Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_portalbridge_command_is_a_real_subcommand(compose: dict[str, Any]) -> None:
    services = portalbridge_services(compose)
    assert set(LONG_RUNNING) | {"migrate"} <= set(services)
    for name, service in services.items():
        args = _parser().parse_args(service["command"])  # exits (fails) on an unknown command
        assert callable(args.run), name
        if name in LONG_RUNNING:
            assert args.components == frozenset(LONG_RUNNING[name]), name
    assert services["migrate"]["command"] == ["db", "upgrade"]


def test_migrations_run_once_before_the_processes_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    for name in ("worker", "relay"):
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in [*LONG_RUNNING, "postgres", "rabbitmq"]:
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert services["rabbitmq"]["image"].endswith("-management")
    assert "15672:15672" in services["rabbitmq"]["ports"]


def test_the_settings_by_environment_are_the_ones_the_engine_reads(
        compose: dict[str, Any], tmp_path: Path) -> None:
    source = (ROOT / "engine" / "config.py").read_text("utf-8")
    for name, service in portalbridge_services(compose).items():
        environment = service["environment"]
        unknown = [key for key in environment if f'"{key}"' not in source]
        assert not unknown, f"{name}: {unknown} are not read by engine/config.py"
        settings = Settings.from_environment(environment, cwd=tmp_path)
        assert settings.database_url.startswith("postgresql://")
        assert not settings.uses_embedded_broker
        assert settings.heartbeat_file == Path("/tmp/portalbridge.alive")


def test_one_image_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert 'ENTRYPOINT ["portalbridge"]' in dockerfile
    for package in ("engine", "mpi", "inbound", "outbound"):
        assert f"COPY {package} {package}" in dockerfile
    ignore = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert {"!engine/", "!mpi/", "!inbound/", "!outbound/", "!pyproject.toml"} <= set(ignore)


def test_the_workers_apply_every_inbound_partition_exactly_once(
        compose: dict[str, Any], tmp_path: Path) -> None:
    workers = [Settings.from_environment(service["environment"], cwd=tmp_path)
               for service in portalbridge_services(compose).values()
               if service["command"] == ["worker"]]
    partitions = workers[0].inbound_partitions
    assert partitions > 1 and {w.inbound_partitions for w in workers} == {partitions}
    applied = sorted(n for w in workers for n in (w.worker_partitions or range(partitions)))
    assert applied == list(range(partitions))
