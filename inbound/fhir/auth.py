"""Bearer tokens of FHIR clients, checked against routing.yaml's ``fhir.clients``.

Only SHA-256 digests of tokens are configured. The digest of the presented token is compared
with every client's in constant time (``hmac.compare_digest``, no early exit), so timing
says nothing about which digest came close. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac

from engine.rules import FhirClient, FhirRules
from inbound.fhir.errors import FhirError

__all__ = ["authenticate"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portalbridge-fhir"'}


def authenticate(rules: FhirRules, authorization: str | None) -> FhirClient | None:
    """The client a request authenticates as; None when routing.yaml lists no clients.

    With clients listed, a missing or unknown token is a 401 with a Bearer challenge.
    """
    if not rules.clients:
        return None
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "this server needs a bearer token (Authorization: Bearer <token>)",
                        "http.Authorization", code="login", headers=_CHALLENGE)
    digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    found: FhirClient | None = None
    for client in rules.clients:
        if hmac.compare_digest(digest, client.token_sha256):
            found = client
    if found is None:
        raise FhirError(401, "the bearer token is not one this server knows", "http.Authorization",
                        code="login", headers=_CHALLENGE)
    return found
