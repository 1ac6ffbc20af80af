"""Shared pieces of the membership integration tests: rules, messages, mail files."""

from __future__ import annotations

import email
import email.policy
import re
import time
from pathlib import Path

from tests.conftest import TEST_RULES_YAML

ENROLL_RULES = TEST_RULES_YAML.replace(
    "  - {name: updates, match: {message_type: ADT, trigger: [A01, A04, A05, A08, A28, A31]},\n"
    "     action: upsert_patient}\n",
    "  - {name: registrations, match: {message_type: ADT, trigger: [A04, A28]},\n"
    "     action: upsert_patient, enroll: {requires: [email], enrolling_user: ADT-FEED}}\n"
    "  - {name: updates, match: {message_type: ADT, trigger: [A01, A05, A08, A31]},\n"
    "     action: upsert_patient}\n").replace(
    "events: {mpi_changed_for: all_patients}", "events: {mpi_changed_for: members}")
assert "enroll:" in ENROLL_RULES


def registration(control_id: str, mrn: str, email_address: str = "ann@example.org",
                 trigger: str = "A04") -> bytes:
    """An ADT with the fields activation asks for: mother's maiden name, e-mail, SSN."""
    telecom = f"^NET^Internet^{email_address}" if email_address else ""
    return (f"MSH|^~\\&|EMR|GHH|PB|PB|20260101120000||ADT^{trigger}^ADT_A01|{control_id}|P|2.5.1\r"
            f"EVN|{trigger}|20260101120000\r"
            f"PID|1||{mrn}^^^GHH^MR||DOE^ANN|SMITH|19800102|F|||1 Main St^^Boston^MA^02139||"
            f"{telecom}||||||123-45-6789\r").encode()


def wait_for_mail(folder: Path, kind: str, count: int = 1, timeout: float = 20.0) -> list[Path]:
    """The mail files of ``kind`` once ``count`` of them exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(f"*_{kind}_*.eml")) if folder.exists() else []
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {count} {kind} mail file(s) in {folder} after {timeout} s")


def plain_text(path: Path) -> str:
    """The text/plain part of a mail file."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def token_in(path: Path) -> str:
    """The activation code written in a mail file, as a member reads it."""
    body = plain_text(path)
    match = re.search(r"^\s+([A-Z2-7]{26})\s*$", body, re.M)
    assert match, body
    return match.group(1)


def member_of(path: Path, kind: str = "activation_token") -> str:
    """The member id in a mail file's name (``<time>_<kind>_<channel>_<member>_<id>.eml``)."""
    return path.name.split(f"_{kind}_", 1)[1].split("_")[1]
