"""The fault harness of issue 8: the engine under failures, with the books kept.

``python -m tests.faults`` (time-boxed, about a minute) or ``python -m tests.faults --long``
(a soak of several fault cycles) feeds HL7 v2 messages over MLLP on 8 connections to two
``portalbridge listen`` processes that update the same patients, with a ``relay`` and a
subscriber bound to the status exchange, while it kills (``kill -9``) and restarts the
listeners and the relay and restarts RabbitMQ and PostgreSQL for real. Then it counts and
checks: every AA-acknowledged message has its effect exactly once, every patient's final
state holds every stream's last value, every event arrives with per-patient sequence
numbers 1, 2, ... and none missing. ``tests/faults/test_faults.py`` is the pytest form CI
runs (``pytest -m faults tests/faults``): it restarts the shared servers, so the default
test run leaves it out.
"""
