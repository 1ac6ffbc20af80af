#!/usr/bin/env python3
"""Print a new .env for docker-compose.yml with random secrets: python3 deploy/make_env.py > .env

Standard library only, so it runs before anything is installed. The passwords are URL-safe
(letters, digits, - and _): they go inside the database and broker URLs as they are.
"""

from __future__ import annotations

import base64
import secrets
import sys

TEMPLATE = """\
# docker-compose.yml reads this file (keep it out of version control; .gitignore lists it).
# Made by deploy/make_env.py: every password below is new and random.
POSTGRES_PASSWORD={postgres}
RABBITMQ_PASSWORD={rabbitmq}
# Seals activation tokens, notification secrets and the message journal's payloads (32
# random bytes, base64); every portalbridge process needs the same one. Keep it with the
# database's backups: without it what they sealed cannot be read.
PORTALBRIDGE_SECRET_KEY={secret_key}
# Where notifications go: the notifier's mail folder, or smtp://user:password@host:587.
PORTALBRIDGE_MAIL_URL=file:///var/lib/portalbridge/mail
# Where the HTTP API, RabbitMQ (AMQP) and its management UI are published on the host:
# 127.0.0.1 keeps them on this machine; 0.0.0.0 opens them to the network (put the API
# behind TLS first: README, "TLS for the HTTP API").
API_BIND=127.0.0.1
RABBITMQ_BIND=127.0.0.1
RABBITMQ_MANAGEMENT_BIND=127.0.0.1
"""


def main() -> int:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
    sys.stdout.write(TEMPLATE.format(postgres=secrets.token_urlsafe(24),
                                     rabbitmq=secrets.token_urlsafe(24), secret_key=key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
