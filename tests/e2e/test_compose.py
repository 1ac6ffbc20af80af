"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The file is validated against the Compose Specification's JSON Schema (vendored, see
tests/samples/compose-spec/SOURCE.md) and every portalbridge service's command must be a real
``portalbridge`` subcommand, parsed by the CLI's own argument parser.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from engine.cli import _parser, main
from engine.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "samples" / "compose-spec" / "compose-spec.json"
LONG_RUNNING = {"listen": {"listen"}, "api": {"api"}, "worker": {"worker", "enrollment"},
                "relay": {"relay"}, "notifier": {"notifier"}, "scheduler": {"scheduler"}}


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


def test_the_settings_by_environment_are_the_ones_the_engine_reads(
        compose: dict[str, Any], tmp_path: Path) -> None:
    source = (ROOT / "engine" / "config.py").read_text("utf-8")
    source += (ROOT / "engine" / "secrets_check.py").read_text("utf-8")  # check-secrets reads these
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
    assert "pip wheel --no-cache-dir -c constraints.txt" in dockerfile  # pinned versions
    assert "COPY pyproject.toml README.md constraints.txt ./" in dockerfile
    for package in ("engine", "mpi", "inbound", "outbound"):
        assert f"COPY {package} {package}" in dockerfile
    ignore = (ROOT / ".dockerignore").read_text("utf-8").split()
    assert {"!engine/", "!mpi/", "!inbound/", "!outbound/", "!pyproject.toml",
            "!constraints.txt"} <= set(ignore)


# -- secrets and exposure ---------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:?message}`` and ``${NAME:-default}``, as ``docker compose`` does them."""
    def one(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {text}")
        return text if kind == "-" else ""
    return _VARIABLE.sub(one, value)


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def dotenv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_the_file_ships_no_password_and_requires_each_from_the_env_file(compose: dict[str, Any]) -> None:
    secrets = [(path, value) for path, value in strings(compose)
               if re.search(r"PASS(WORD)?$|_URL$", path) and not path.endswith("HEARTBEAT_FILE")]
    assert len(secrets) >= 6
    for path, value in secrets:
        password = _url_password(value) if "://" in value else value
        assert password.startswith("${") and ":?" in password, f"{path} ships a password: {value}"
        with pytest.raises(KeyError):
            interpolate(value, {})  # no .env: compose refuses to start, naming the variable


def _url_password(url: str) -> str:
    """What stands between ``user:`` and ``@host`` (``urlsplit`` cannot read a ``${...}`` there)."""
    return url.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]


def test_the_api_and_rabbitmq_are_published_on_localhost_unless_opened(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name: [interpolate(p, {}) for p in service.get("ports", [])]
                 for name, service in services.items()}
    assert published["api"] == ["127.0.0.1:8080:8080"]
    assert published["rabbitmq"] == ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"]
    assert published["listen"] == ["2575:2575"]  # EMRs on the network send HL7 here
    assert all(not ports for name, ports in published.items()
               if name not in {"api", "rabbitmq", "listen"}), published
    opened = {"API_BIND": "0.0.0.0", "RABBITMQ_MANAGEMENT_BIND": "0.0.0.0"}
    assert interpolate(services["api"]["ports"][0], opened) == "0.0.0.0:8080:8080"
    assert interpolate(services["rabbitmq"]["ports"][1], opened) == "0.0.0.0:15672:15672"


def test_every_service_waits_for_the_secrets_check(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def waits_for(name: str) -> set[str]:
        direct = set(services[name].get("depends_on", {}))
        return direct.union(*(waits_for(d) for d in direct)) if direct else set()

    for name in set(services) - {"check-secrets"}:
        assert "check-secrets" in waits_for(name), name
    for name in ("postgres", "rabbitmq"):
        condition = services[name]["depends_on"]["check-secrets"]["condition"]
        assert condition == "service_completed_successfully"
    assert services["check-secrets"]["command"] == ["secrets", "check"]
    assert services["check-secrets"]["restart"] == "no"


def check_secrets(compose: dict[str, Any], env_file: str, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``portalbridge secrets check`` with the check-secrets service's environment for ``env_file``."""
    variables = dotenv(env_file)
    for key, value in compose["services"]["check-secrets"]["environment"].items():
        monkeypatch.setenv(key, interpolate(value, variables))
    code = main(["secrets", "check"])
    return code, capsys.readouterr().err


def test_the_secrets_check_refuses_the_example_values(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    example = (ROOT / ".env.example").read_text("utf-8")
    code, err = check_secrets(compose, example, monkeypatch, capsys)
    assert code == 2
    for name in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "PORTALBRIDGE_DATABASE_URL",
                 "PORTALBRIDGE_BROKER_URL", "PORTALBRIDGE_SECRET_KEY"):
        assert name in err and "placeholder from .env.example" in err
    assert "change-me" not in err  # values are never printed
    old_defaults = example.replace("change-me-postgres-password", "portalbridge")
    code, err = check_secrets(compose, old_defaults, monkeypatch, capsys)
    assert code == 2 and "POSTGRES_PASSWORD is a well-known default" in err


def test_a_generated_env_file_passes_the_check(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    made = subprocess.run([sys.executable, str(ROOT / "deploy" / "make_env.py")], capture_output=True,
                          text=True, check=True).stdout
    assert made != subprocess.run([sys.executable, str(ROOT / "deploy" / "make_env.py")],
                                  capture_output=True, text=True, check=True).stdout  # random
    assert set(dotenv(made)) == set(dotenv((ROOT / ".env.example").read_text("utf-8")))
    code, err = check_secrets(compose, made, monkeypatch, capsys)
    assert (code, err) == (0, "")


def test_the_env_file_stays_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text("utf-8").split()
    ignore = [line for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "*" and "!.env" not in ignore  # everything out, then a few files back


def test_the_workers_apply_every_inbound_partition_exactly_once(
        compose: dict[str, Any], tmp_path: Path) -> None:
    workers = [Settings.from_environment(service["environment"], cwd=tmp_path)
               for service in portalbridge_services(compose).values()
               if service["command"] == ["worker"]]
    partitions = workers[0].inbound_partitions
    assert partitions > 1 and {w.inbound_partitions for w in workers} == {partitions}
    applied = sorted(n for w in workers for n in (w.worker_partitions or range(partitions)))
    assert applied == list(range(partitions))


def test_the_secrets_check_refuses_a_journal_key_that_is_not_32_bytes(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    made = subprocess.run([sys.executable, str(ROOT / "deploy" / "make_env.py")], capture_output=True,
                          text=True, check=True).stdout
    key = dotenv(made)["PORTALBRIDGE_SECRET_KEY"]
    code, err = check_secrets(compose, made.replace(key, "c2hvcnQ="), monkeypatch, capsys)
    assert code == 2 and "PORTALBRIDGE_SECRET_KEY is not 32 random bytes in base64" in err
    assert key not in err and "c2hvcnQ=" not in err
