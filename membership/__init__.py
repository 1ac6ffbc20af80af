"""Portal membership: members, their enrollment and membership status, activation tokens,
temporary passphrases, passwords and the policies that govern them.

A pure domain package, like ``mpi``: no database, broker or HTTP; time and randomness come in
through small ports (``Clock`` callables and ``RandomSource``), so every rule is testable
without sleeping. It imports nothing of ours except ``mpi``'s value types.
"""

from __future__ import annotations

__all__: list[str] = []
