"""Valid identifiers and actors for tests, built by the rules rather than copied."""

from __future__ import annotations

import itertools

from domain.identifiers import resident_id_check_character
from domain.provenance import Actor, Provenance, Role

CLERK = Actor(id="clerk-1", role=Role.INTAKE_CLERK, organisation="440103")
BY_CLERK = Provenance(actor=CLERK, reason="walk-in application", correlation_id="corr-1")

_sequence = itertools.count(1)


def resident_id(
    address: str = "440103", born: str = "19850307", sequence: int | None = None
) -> str:
    """A valid resident ID; a new one each call unless ``sequence`` is given."""
    seq = next(_sequence) % 1000 if sequence is None else sequence
    body = f"{address}{born}{seq:03d}"
    return body + resident_id_check_character(body)


def village(county: str = "440103", township: str = "001", village_: str = "001") -> str:
    return f"{county}{township}{village_}"
