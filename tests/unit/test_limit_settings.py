"""The listener limits read from the environment: safe defaults, casts, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ListenerLimits, Settings
from engine.errors import ConfigurationError


def test_the_defaults_bound_everything(tmp_path: Path) -> None:
    limits = Settings.from_environment({}, cwd=tmp_path).limits
    assert limits == ListenerLimits()
    assert (limits.mllp_max_connections, limits.mllp_idle_timeout, limits.mllp_read_timeout) == (
        1000, 600.0, 60.0)
    assert limits.mllp_connection_buffer_bytes == 8 * 1024 * 1024
    assert limits.mllp_total_buffer_bytes == 256 * 1024 * 1024
    assert (limits.http_max_body_bytes, limits.http_max_header_bytes) == (1024 * 1024, 16384)
    assert (limits.http_max_concurrency, limits.http_keepalive_timeout,
            limits.http_request_timeout) == (256, 5, 30.0)
    assert limits.tls_cert_file is None and limits.tls_key_file is None


def test_each_limit_has_its_setting(tmp_path: Path) -> None:
    limits = Settings.from_environment({
        "PORTALBRIDGE_MLLP_MAX_CONNECTIONS": "10", "PORTALBRIDGE_MLLP_IDLE_TIMEOUT": "2.5",
        "PORTALBRIDGE_MLLP_READ_TIMEOUT": "7", "PORTALBRIDGE_MLLP_CONNECTION_BUFFER_BYTES": "5000000",
        "PORTALBRIDGE_MLLP_TOTAL_BUFFER_BYTES": "9000000", "PORTALBRIDGE_HTTP_MAX_BODY_BYTES": "100",
        "PORTALBRIDGE_HTTP_MAX_HEADER_BYTES": "200", "PORTALBRIDGE_HTTP_MAX_CONCURRENCY": "3",
        "PORTALBRIDGE_HTTP_KEEPALIVE_TIMEOUT": "9", "PORTALBRIDGE_HTTP_REQUEST_TIMEOUT": "0.5",
        "PORTALBRIDGE_TLS_CERT_FILE": "/tls/cert.pem", "PORTALBRIDGE_TLS_KEY_FILE": "/tls/key.pem",
    }, cwd=tmp_path).limits
    assert limits == ListenerLimits(
        mllp_max_connections=10, mllp_idle_timeout=2.5, mllp_read_timeout=7.0,
        mllp_connection_buffer_bytes=5_000_000, mllp_total_buffer_bytes=9_000_000,
        http_max_body_bytes=100, http_max_header_bytes=200, http_max_concurrency=3,
        http_keepalive_timeout=9, http_request_timeout=0.5,
        tls_cert_file=Path("/tls/cert.pem"), tls_key_file=Path("/tls/key.pem"))


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("PORTALBRIDGE_MLLP_MAX_CONNECTIONS", "0", "must be at least 1"),
    ("PORTALBRIDGE_MLLP_MAX_CONNECTIONS", "1.5", "is not a whole number"),
    ("PORTALBRIDGE_MLLP_IDLE_TIMEOUT", "soon", "is not a number of seconds"),
    ("PORTALBRIDGE_HTTP_REQUEST_TIMEOUT", "-1", "must be a positive number of seconds"),
    ("PORTALBRIDGE_HTTP_REQUEST_TIMEOUT", "inf", "must be a positive number of seconds"),
    ("PORTALBRIDGE_TLS_CERT_FILE", "/tls/cert.pem", "go together"),
])
def test_a_bad_value_names_its_setting(tmp_path: Path, name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Settings.from_environment({name: raw}, cwd=tmp_path)
    assert caught.value.reason.startswith("PORTALBRIDGE_")
