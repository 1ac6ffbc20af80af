"""Failures at start, as the real ``portalbridge`` command meets them: one clear line on
standard error, exit code 2, no traceback. And ``--version``; every ``--help`` names the
settings the command reads."""

from __future__ import annotations

import argparse
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import _parser
from engine.config import setting_names
from tests.e2e.conftest import E2E, free_port, portalbridge


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Embedded defaults in a scratch folder, free ports, quiet logs."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("PORTALBRIDGE_")}
    return {**variables, "PORTALBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'pb.db'}",
            "PORTALBRIDGE_CONFIG": str(E2E / "corpus_rules.yaml"),
            "PORTALBRIDGE_MLLP_PORT": str(free_port()), "PORTALBRIDGE_HTTP_PORT": str(free_port()),
            "PORTALBRIDGE_LOG_LEVEL": "WARNING"}


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def refused(env: dict[str, str], *args: str) -> str:
    """Run a command that must fail at start; its one line of standard error."""
    done = portalbridge(*args, env=env, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("setting", ["PORTALBRIDGE_MLLP_PORT", "PORTALBRIDGE_HTTP_PORT"])
def test_a_port_already_in_use(setting: str, env: dict[str, str], taken_port: int) -> None:
    line = refused({**env, setting: str(taken_port)}, "serve")
    what = "MLLP" if "MLLP" in setting else "HTTP"
    assert line == (f"error: cannot listen for {what} on 127.0.0.1:{taken_port}: address already in "
                    f"use (set {setting} to a free port, or stop what holds this one)")


def test_an_unreachable_database(env: dict[str, str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/portalbridge"
    line = refused({**env, "PORTALBRIDGE_DATABASE_URL": url}, "serve")
    assert "cannot open the database postgresql+psycopg://postgres@127.0.0.1" in line
    assert "Connection refused" in line


def test_a_missing_database(env: dict[str, str], postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + f"/pb_missing_{uuid.uuid4().hex[:8]}"
    line = refused({**env, "PORTALBRIDGE_DATABASE_URL": missing}, "serve")
    assert "does not exist" in line and "(PORTALBRIDGE_DATABASE_URL)" in line
    folder = refused({**env, "PORTALBRIDGE_DATABASE_URL": "sqlite:////no/such/folder/pb.db"}, "db", "upgrade")
    assert "unable to open database file (does its folder exist" in folder


@pytest.mark.parametrize(("setting", "url", "scheme"), [
    ("PORTALBRIDGE_DATABASE_URL", "mysql://user@db/portalbridge", "mysql"),
    ("PORTALBRIDGE_DATABASE_URL", "portalbridge.db", "portalbridge.db"),
    ("PORTALBRIDGE_BROKER_URL", "redis://localhost:6379/0", "redis"),
])
def test_an_unsupported_url_scheme(setting: str, url: str, scheme: str, env: dict[str, str]) -> None:
    line = refused({**env, setting: url}, "serve")
    assert line.startswith(f"error: {setting}: unsupported URL scheme '{scheme}' (use ")


def test_a_missing_routing_file(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "routing.yaml"
    line = refused({**env, "PORTALBRIDGE_CONFIG": str(missing)}, "serve")
    assert line == f"error: {missing}: cannot read the routing file (No such file or directory)"
    # `config check` keeps its own answer: 1 means "not valid".
    assert portalbridge("config", "check", str(missing), env=env, check=False).returncode == 1


def test_version(env: dict[str, str]) -> None:
    done = portalbridge("--version", env=env)
    assert done.stdout.startswith("portalbridge ") and done.stdout.split()[1][0].isdigit()


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield path, parser
    for action in actions:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


def test_every_help_names_the_settings_it_reads(env: dict[str, str]) -> None:
    known = set(setting_names())
    leaves = list(_leaves(_parser()))
    assert len(leaves) >= 17
    for path, parser in leaves:
        text = " ".join(parser.format_help().split())
        assert "settings read (environment): " in text, path
        named = text.split("settings read (environment): ", 1)[1].replace(",", " ").split()
        assert named and set(named) <= known and "PORTALBRIDGE_LOG_LEVEL" in named, (path, named)
    # And as a user sees it, through the installed command.
    assert "PORTALBRIDGE_MLLP_PORT" in portalbridge("send", "--help", env=env).stdout
    assert "PORTALBRIDGE_DATABASE_URL" in portalbridge("staff", "add", "--help", env=env).stdout
