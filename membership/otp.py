"""Two-factor sign-in codes (specification 5.3): after the password, a 6-digit code sent by
text or e-mail; valid 6 minutes; single use; a few attempts; a new code replaces the old.

A challenge is identified by a random id the client holds (stored only as its SHA-256
digest). The code is stored as an HMAC keyed with that id: someone who reads the database
cannot try the million codes offline without the id, which is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from membership.tokens import RandomSource, new_token_text, token_digest

__all__ = ["OtpChallenge", "OtpCheck", "issue_challenge"]


def _code_mac(challenge: str, code: str) -> str:
    key = challenge.strip().upper().encode("ascii", errors="replace")
    return hmac.new(key, code.strip().encode("ascii", errors="replace"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class OtpChallenge:
    """The member's current challenge: its id digest, the code's MAC, validity, attempts."""

    digest: str
    code_mac: str
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0

    def expired(self, now: datetime) -> bool:
        """Valid for exactly its lifetime: at ``expires_at`` (6:00 after issue) it is over."""
        return now >= self.expires_at

    def matches(self, challenge: str, code: str) -> bool:
        return hmac.compare_digest(self.digest, token_digest(challenge)) and \
            hmac.compare_digest(self.code_mac, _code_mac(challenge, code))

    def attempted(self) -> OtpChallenge:
        return replace(self, attempts=self.attempts + 1)


@dataclass(frozen=True, slots=True)
class OtpCheck:
    """The result of entering a code: accepted, or why not (for the audit log)."""

    ok: bool
    reason: str = ""
    spent: bool = False  # the challenge can no longer be used


def issue_challenge(random: RandomSource, now: datetime, valid_for: timedelta,
                    digits: int = 6) -> tuple[OtpChallenge, str, str]:
    """A new challenge, its id (for the client) and its code (for the notification)."""
    challenge = new_token_text(random)
    code = str(random.below(10 ** digits)).zfill(digits)
    stored = OtpChallenge(digest=token_digest(challenge), code_mac=_code_mac(challenge, code),
                          issued_at=now, expires_at=now + valid_for)
    return stored, challenge, code
