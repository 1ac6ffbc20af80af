"""`portalbridge staff` and `portalbridge audit` as an operator runs them, against `serve`."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import httpx

from tests.e2e.conftest import ServeProcess, portalbridge, staff_token
from tests.e2e.test_cli import sqlite_env

ME = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


def test_a_token_from_staff_add_opens_the_mpi_until_it_is_revoked(serve: ServeProcess,
                                                                  tmp_path: Path) -> None:
    added = portalbridge("staff", "add", "maria", "--role", "direct enrollment user",
                         "--role", "Member Account Manager", env=serve.env)
    token = added.stdout.splitlines()[-1]
    assert token.startswith("pbs_") and len(token) == 47
    assert added.stdout.strip() == token, "the token is alone on standard output"
    assert "maria" in added.stderr and "shown only this once" in added.stderr

    url = f"{serve.http}/mpi/patients"
    query = {"identifier": "GHH|1"}
    assert httpx.get(url, params=query, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(url, params=query).status_code == 401

    listed = portalbridge("staff", "list", env=serve.env).stdout.splitlines()
    assert listed[0] == "id\tname\troles\tcreated\trevoked"
    [row] = [line.split("\t") for line in listed[1:]]
    assert row[1:3] == ["maria", "Direct Enrollment User, Member Account Manager"] and row[4] == "-"

    revoked = portalbridge("staff", "revoke", "maria", "--reason", "left the clinic", env=serve.env)
    assert "revoked maria" in revoked.stdout
    assert httpx.get(url, params=query, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    again = portalbridge("staff", "revoke", row[0], "--reason", "twice", env=serve.env, check=False)
    assert again.returncode == 2 and "revoked already" in again.stderr

    lines = [line.split("\t") for line in portalbridge("audit", env=serve.env).stdout.splitlines()]
    # id, time, actor, action, outcome, member, patient, reason, detail; newest first
    assert [(actor, action, outcome) for _id, _at, actor, action, outcome, *_ in lines] == [
        (ME, "staff.revoke", "refused"), (ME, "staff.revoke", "success"), (ME, "staff.list", "success"),
        ("staff:maria", "mpi.search", "success"), (ME, "staff.add", "success")]
    assert lines[1][7] == "left the clinic" and lines[0][7].startswith("twice (refused: maria was revoked")
    only = portalbridge("audit", "--actor", "staff:*", "--since", "1h", env=serve.env).stdout.splitlines()
    assert len(only) == 1 and "\tmpi.search\t" in only[0]
    serve_log = (tmp_path / "serve.log").read_text()
    assert token not in serve_log and token[4:] not in serve_log


def test_an_unknown_role_is_one_line_naming_the_valid_ones(tmp_path: Path) -> None:
    done = portalbridge("staff", "add", "x", "--role", "superuser", env=sqlite_env(tmp_path), check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: unknown role 'superuser'; valid roles: \"Direct Enrollment User\", "
        "\"Member Account Manager\", \"enrollment request agent\", \"enrollment exception agent\", "
        "\"administrator\", \"account status client\""]
    assert not (tmp_path / "pb.db").exists(), "refused before the database is touched"


def test_revoke_needs_a_reason_and_bad_audit_filters_are_refused(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    token = staff_token(env, "omar", "administrator")
    assert token.startswith("pbs_")
    no_reason = portalbridge("staff", "revoke", "omar", env=env, check=False)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    bad = portalbridge("audit", "--since", "yesterday", env=env, check=False)
    assert bad.returncode == 2 and "neither a duration" in bad.stderr
    unknown = portalbridge("staff", "revoke", "nobody", "--reason", "x", env=env, check=False)
    assert unknown.returncode == 2 and "no staff member" in unknown.stderr
