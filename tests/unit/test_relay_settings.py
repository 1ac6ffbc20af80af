"""The relay's settings are read from the environment with casts and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import Settings
from engine.errors import ConfigurationError


def test_defaults_and_overrides(tmp_path: Path) -> None:
    default = Settings.from_environment({}, cwd=tmp_path)
    assert (default.relay_max_attempts, default.relay_batch_size, default.heartbeat_file) == (8, 500, None)
    assert default.uses_embedded_broker
    custom = Settings.from_environment({"PORTALBRIDGE_RELAY_MAX_ATTEMPTS": "3",
                                        "PORTALBRIDGE_RELAY_BATCH_SIZE": "50",
                                        "PORTALBRIDGE_HEARTBEAT_FILE": "/tmp/alive",
                                        "PORTALBRIDGE_BROKER_URL": "amqp://guest:guest@h:5672//"},
                                       cwd=tmp_path)
    assert (custom.relay_max_attempts, custom.relay_batch_size) == (3, 50)
    assert custom.heartbeat_file == Path("/tmp/alive") and not custom.uses_embedded_broker


@pytest.mark.parametrize("raw", ["zero", "0", "-2"])
def test_bad_values_name_the_variable(raw: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PORTALBRIDGE_RELAY_MAX_ATTEMPTS"):
        Settings.from_environment({"PORTALBRIDGE_RELAY_MAX_ATTEMPTS": raw}, cwd=tmp_path)
