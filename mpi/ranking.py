"""Best demographics by tier ranking.

The rule (functional specification, "Source facilities for demographic information"): the
demographics shown for a patient come from the facility that has the patient's MRN on file
with the best (lowest) tier rank and, among equals, the latest create or update time.

We apply that order field by field: each field comes from the best-ranked record that has a
value for it. For every field the best-ranked record supplies, this is exactly the rule; a
field that record lacks (an e-mail address, say) is filled from the next record in rank order
instead of being left empty, and ``provenance`` says which facility supplied each field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mpi.model import (
    DEMOGRAPHIC_FIELDS,
    Demographics,
    Identifier,
    SourceRecord,
    distinct_identifiers,
)

__all__ = ["BestDemographics", "best_demographics", "rank_records"]

TierOf = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class BestDemographics:
    """The outcome of ranking: values, where each came from, and the winning record."""

    demographics: Demographics
    provenance: dict[str, str]
    winner_facility: str
    winner_tier: int | None


def rank_records(records: Iterable[SourceRecord], tier_of: TierOf) -> list[SourceRecord]:
    """Active records, best first: lowest tier, then latest update, then id for stability."""
    active = [r for r in records if r.is_active]
    # updated_at is never earlier than created_at, so it is "the latest create or update time".
    active.sort(key=lambda r: r.id)
    active.sort(key=lambda r: r.updated_at, reverse=True)
    active.sort(key=lambda r: tier_of(r.key.facility))
    return active


def best_demographics(records: Iterable[SourceRecord], tier_of: TierOf) -> BestDemographics:
    """Compute the best demographics of one patient from all of its source records."""
    ranked = rank_records(records, tier_of)
    if not ranked:
        return BestDemographics(Demographics(), {}, "", None)
    chosen: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for name in DEMOGRAPHIC_FIELDS:
        for record in ranked:
            if not record.demographics.is_empty(name):
                chosen[name] = getattr(record.demographics, name)
                provenance[name] = record.key.facility
                break
    best = replace(Demographics(), identifiers=_all_identifiers(ranked), **chosen)
    winner = ranked[0].key.facility
    return BestDemographics(best, provenance, winner, tier_of(winner))


def _all_identifiers(ranked: Sequence[SourceRecord]) -> tuple[Identifier, ...]:
    """Every record's identifiers, each (authority, value) once (a typed copy wins)."""
    return distinct_identifiers(i for record in ranked for i in record.demographics.identifiers)
