"""A person known to the ledger (by resident ID): the death record and the active-case guard.

The aggregate's id is a keyed hash of the resident ID number (a blind index), so the number is
never an identifier in the log, and finding a person needs the key. Two rules live here because
a person is the natural unit of consistency for them:
- a death is recorded once, and then every case of the person learns of it;
- one active application or case per programme anywhere in the province: a case claims the
  person's slot for its programme in the same atomic save that records it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

from eventsourcing.domain import Aggregate, event

from domain.errors import DateOfDeath, DeathRecordedOnce, DuplicateActiveCase, MembershipForbids
from domain.identifiers import mask_resident_id, parse_resident_id
from domain.provenance import Provenance
from domain.values import require_person_name


def person_id_for(resident_id: str, key: bytes) -> uuid.UUID:
    """The blind index of a resident ID number: HMAC-SHA256 under ``key``, as a UUID."""
    digest = hmac.new(key, resident_id.upper().encode("ascii"), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16])


class Person(Aggregate):
    @classmethod
    def register(
        cls,
        *,
        resident_id: str,
        name: str,
        household_id: uuid.UUID,
        key: bytes,
        provenance: Provenance,
    ) -> Person:
        number = parse_resident_id(resident_id, field="resident_id").number
        name = require_person_name(name, field="name")
        return cls(
            id=person_id_for(number, key),
            resident_id=number,
            name=name.strip(),
            household_id=household_id,
            provenance=provenance,
        )

    class Registered(Aggregate.Created):
        resident_id: str
        name: str
        household_id: uuid.UUID
        provenance: Provenance

    @event(Registered)
    def __init__(
        self,
        *,
        id: uuid.UUID,
        resident_id: str,
        name: str,
        household_id: uuid.UUID,
        provenance: Provenance,
    ) -> None:
        self.resident_id = resident_id
        self.name = name
        self.household_id: uuid.UUID | None = household_id
        self.died_on: dt.date | None = None
        self.active_cases: dict[str, uuid.UUID] = {}
        self.cases: list[uuid.UUID] = []

    @property
    def masked_id(self) -> str:
        return mask_resident_id(self.resident_id)

    # Household membership ------------------------------------------------------------------

    def join_household(self, household_id: uuid.UUID, provenance: Provenance) -> None:
        if self.household_id is not None and self.household_id != household_id:
            raise MembershipForbids(
                f"person {self.masked_id} belongs to household {self.household_id}; "
                "record the move out first",
                field="resident_id",
            )
        if self.household_id == household_id:
            return
        self.trigger_event(self.HouseholdChanged, household_id=household_id, provenance=provenance)

    def leave_household(self, provenance: Provenance) -> None:
        self.trigger_event(self.HouseholdChanged, household_id=None, provenance=provenance)

    class HouseholdChanged(Aggregate.Event):
        household_id: uuid.UUID | None
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Person)
            aggregate.household_id = self.household_id

    # Death ---------------------------------------------------------------------------------

    def record_death(self, *, on: dt.date, today: dt.date, provenance: Provenance) -> None:
        if self.died_on is not None:
            raise DeathRecordedOnce(
                f"the death of {self.masked_id} was recorded already (on {self.died_on})",
                field="resident_id",
            )
        if on > today:
            raise DateOfDeath("a date of death cannot lie in the future", field="date_of_death")
        if on < parse_resident_id(self.resident_id).birth_date:
            raise DateOfDeath("a date of death cannot precede the birth", field="date_of_death")
        self.trigger_event(self.Died, on=on, provenance=provenance)

    class Died(Aggregate.Event):
        on: dt.date
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Person)
            aggregate.died_on = self.on

    def check_alive(self) -> None:
        if self.died_on is not None:
            raise DeathRecordedOnce(
                f"{self.masked_id} died on {self.died_on}", field="applicant_id"
            )

    # The active-case guard -----------------------------------------------------------------

    def claim(self, *, programme: str, case_id: uuid.UUID, provenance: Provenance) -> None:
        existing = self.active_cases.get(programme)
        if existing is not None:
            raise DuplicateActiveCase(
                f"{self.masked_id} already has an active {programme} application or case: "
                f"{existing}",
                existing_case_id=str(existing),
                field="applicant_id",
            )
        self.trigger_event(
            self.CaseClaimed, programme=programme, case_id=case_id, provenance=provenance
        )

    class CaseClaimed(Aggregate.Event):
        programme: str
        case_id: uuid.UUID
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Person)
            aggregate.active_cases[self.programme] = self.case_id
            aggregate.cases.append(self.case_id)

    def release(self, *, programme: str, case_id: uuid.UUID, provenance: Provenance) -> None:
        if self.active_cases.get(programme) != case_id:
            return  # nothing to release: the slot belongs to no or another case
        self.trigger_event(
            self.CaseReleased, programme=programme, case_id=case_id, provenance=provenance
        )

    class CaseReleased(Aggregate.Event):
        programme: str
        case_id: uuid.UUID
        provenance: Provenance

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Person)
            aggregate.active_cases.pop(self.programme, None)

    def summary(self) -> dict[str, object]:
        return {
            "person_id": str(self.id),
            "resident_id": self.masked_id,
            "name": self.name,
            "household_id": str(self.household_id) if self.household_id else None,
            "died_on": self.died_on.isoformat() if self.died_on else None,
            "active_cases": {k: str(v) for k, v in self.active_cases.items()},
            "version": self.version,
        }
