"""``portalbridge secrets check``: refuse a deployment whose secrets are examples or weak.

docker-compose.yml runs it as the one-shot ``check-secrets`` service that every other service
waits for, so nothing starts (not even PostgreSQL or RabbitMQ, which would take the password
they are first given for good) while a password is missing, is the placeholder of
``.env.example``, is a well-known default, or is short. It looks at the compose variables
(``POSTGRES_PASSWORD``, ``RABBITMQ_PASSWORD``) and at the passwords inside
``PORTALBRIDGE_DATABASE_URL`` and ``PORTALBRIDGE_BROKER_URL``. Values are never printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["EXAMPLE_PREFIX", "MIN_LENGTH", "secret_problems"]

#: Every placeholder in .env.example starts with this.
EXAMPLE_PREFIX = "change-me"
MIN_LENGTH = 16
#: Passwords that come with images, tutorials and this project's own past compose file.
_KNOWN_DEFAULTS = frozenset({"portalbridge", "guest", "postgres", "password", "secret", "admin",
                             "changeme", "example", "rabbitmq", "root", "test"})
_SECRETS = ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD")
_URLS = ("PORTALBRIDGE_DATABASE_URL", "PORTALBRIDGE_BROKER_URL")


def secret_problems(env: Mapping[str, str]) -> list[str]:
    """One line per secret that must not be used; empty when all are fit to deploy."""
    problems = []
    for name in _SECRETS:
        problem = _weakness(env.get(name, ""))
        if problem:
            problems.append(f"{name} {problem}")
    for name in _URLS:
        url = env.get(name, "")
        password = urlsplit(url).password if "://" in url else None
        problem = _weakness(password or "") if password is not None else None
        if problem:
            problems.append(f"the password in {name} {problem}")
    return problems


def _weakness(value: str) -> str | None:
    if not value:
        return "is not set"
    if value.lower().startswith(EXAMPLE_PREFIX):
        return "is the placeholder from .env.example"
    if value.lower() in _KNOWN_DEFAULTS:
        return "is a well-known default password"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None
