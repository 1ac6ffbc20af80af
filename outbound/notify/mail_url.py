"""``PORTALBRIDGE_MAIL_URL``: which mail transport notifications go through.

- ``file://FOLDER`` (default ``file://mail``: ``./mail``): one ``.eml`` file per message;
- ``smtp://[user:password@]host[:port][?starttls=true]``: port 25 by default (587 with
  STARTTLS); a password is only sent over TLS, except to a server on the loopback address;
- ``smtps://[user:password@]host[:port]``: TLS from the first byte, port 465 by default.

Options in the query: ``starttls`` (smtp:// only), ``timeout`` (seconds, default 10) and
``verify`` (``false`` accepts any certificate: for test servers only). User and password are
percent-decoded, so a password may hold ``@`` or ``:`` written as ``%40`` and ``%3A``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from engine.config import DEFAULT_MAIL_URL
from engine.errors import ConfigurationError
from outbound.notify.smtp import Security, SmtpSettings, SmtpTransport
from outbound.notify.transport import FileTransport, MailTransport

__all__ = ["DEFAULT_MAIL_URL", "open_mail_transport", "parse_smtp_url", "redacted"]

_SETTING = "PORTALBRIDGE_MAIL_URL"
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def open_mail_transport(url: str) -> MailTransport:
    """The transport ``url`` names; ``ConfigurationError`` (with the password hidden) if wrong."""
    scheme = url.partition("://")[0].lower()
    if scheme == "file":
        return FileTransport(file_folder(url))
    if scheme in {"smtp", "smtps"}:
        return SmtpTransport(parse_smtp_url(url))
    raise ConfigurationError(f"{_SETTING}: {redacted(url)!r} is not a file://, smtp:// or smtps:// URL")


def file_folder(url: str) -> Path:
    """The folder of a ``file://`` URL: ``file://mail`` is ``./mail``, ``file:///srv/mail``
    is absolute."""
    rest = url.partition("://")[2]
    if not rest:
        raise ConfigurationError(f"{_SETTING}: file:// needs a folder, such as file://mail")
    return Path(unquote(rest))


def parse_smtp_url(url: str) -> SmtpSettings:
    """The settings of an ``smtp://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"{_SETTING}: {redacted(url)!r} has an invalid port") from None
    if not parts.hostname:
        raise ConfigurationError(f"{_SETTING}: {redacted(url)!r} names no host")
    options = _options(parts.query, url)
    implicit_tls = parts.scheme.lower() == "smtps"
    starttls = _flag(options.pop("starttls", "false"), "starttls")
    if implicit_tls and starttls:
        raise ConfigurationError(f"{_SETTING}: smtps:// is TLS already; drop ?starttls")
    security: Security = "tls" if implicit_tls else "starttls" if starttls else "none"
    settings = SmtpSettings(
        host=parts.hostname, port=port or (465 if implicit_tls else 587 if starttls else 25),
        security=security, username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=_seconds(options.pop("timeout", "10")),
        verify=_flag(options.pop("verify", "true"), "verify"))
    if options:
        raise ConfigurationError(f"{_SETTING}: unknown option(s) {', '.join(sorted(options))} "
                                 "(known: starttls, timeout, verify)")
    if settings.username and security == "none" and not _loopback(settings.host):
        raise ConfigurationError(f"{_SETTING}: the password would cross the network "
                                 "unencrypted; add ?starttls=true or use smtps://")
    return settings


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _options(query: str, url: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ConfigurationError(f"{_SETTING}: {redacted(url)!r} has an unreadable query") from None


def _flag(value: str, name: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{_SETTING}: {name}={value!r} is not true or false")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigurationError(f"{_SETTING}: timeout={value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise ConfigurationError(f"{_SETTING}: timeout must be more than 0 seconds")
    return seconds


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
