"""The demo's membership part: the automated enrollment the feed triggered, the activation
code read from the mail file as the member would read it, and the activation over HTTP."""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["show_membership"]

#: What the demo member enters at activation: the fields the default policy requires.
_ACTIVATION = {"fields": {"ssn": "123-45-6789", "mothers_maiden_name": "Rivers"},
               "username": "alex.sample", "password": "Harbour7lights"}


def _wait_for_mail(folder: Path, kind: str, timeout: float = 20.0) -> Path | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(f"*_{kind}_*.eml")) if folder.exists() else []
        if found:
            return found[0]
        time.sleep(0.1)
    return None


def _request(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - our own loopback URL
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:  # noqa: S310 - our own loopback URL
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def show_membership(port: int, token: str, mail: Path) -> None:
    """Print the enrollment, the mail, the activation and the account status."""
    base = f"http://127.0.0.1:{port}"
    print("\nautomated enrollment: routing.yaml's 'registrations' route enrolls an A04 with an "
          "e-mail (request queue -> enrollment consumer -> member pending -> activation mail)")
    path = _wait_for_mail(mail, "activation_token")
    if path is None:
        print("  no activation mail arrived (is the enroll rule still in routing.yaml?)")
        return
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    body = str(part.get_content()) if part is not None else ""
    code = re.search(r"^\s+([A-Z2-7]{26})\s*$", body, re.M)
    print(f"  mail file {path.name}\n    To: {message['To']}  Subject: {message['Subject']}")
    if code is None:
        return
    print(f"    activation code {code.group(1)} (read from the file, as the member reads the mail)")
    status, answer = _request(f"{base}/portal/activation", body={"token": code.group(1), **_ACTIVATION})
    print(f"\nPOST /portal/activation (code, SSN, mother's maiden name, username, password) "
          f"-> {status} {json.dumps(answer)}")
    query = urllib.parse.urlencode({"identifier": "ECC|E-5521"})
    status, answer = _request(f"{base}/accounts/status?{query}", token)
    print(f"GET /accounts/status?identifier=ECC|E-5521 -> {status} {json.dumps(answer)}")
    done = _wait_for_mail(mail, "registration_complete")
    if done is not None:
        print(f"  mail file {done.name} (Registration Complete)")
