"""Bearer tokens of FHIR clients, checked against routing.yaml's ``fhir.clients``.

A request without a known token is refused (401), also when no clients are configured at
all: only ``fhir.allow_anonymous: true`` (demos; logged as a warning at every start) lets a
request without a token in. Only SHA-256 digests of tokens are configured. The digest of the
presented token is compared with every client's in constant time (``hmac.compare_digest``,
no early exit), so timing says nothing about which digest came close. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac

from engine.rules import FhirClient, FhirRules
from inbound.fhir.errors import FhirError

__all__ = ["SETUP_HINT", "authenticate"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portalbridge-fhir"'}


#: What an operator does about a 401 when no client is configured yet.
SETUP_HINT = ("make a client token with `portalbridge fhir token NAME --facility CODE` and add "
              "the line it prints under fhir.clients in routing.yaml")


def authenticate(rules: FhirRules, authorization: str | None) -> FhirClient | None:
    """The client a request authenticates as; None for a request without a token when
    ``allow_anonymous`` is set. Anything else without a known token is a 401 with a Bearer
    challenge (a token sent is always checked, also when anonymous requests are allowed)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if not authorization and rules.allow_anonymous:
        return None
    if not rules.clients and not rules.allow_anonymous:
        raise FhirError(401, f"this server accepts no FHIR requests yet: {SETUP_HINT}",
                        "http.Authorization", code="login", headers=_CHALLENGE)
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
