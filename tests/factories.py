"""Valid identifiers and actors for tests, built by the rules rather than copied."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
import weakref
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.identifiers import resident_id_check_character
from domain.provenance import Actor, Provenance, Role
from infra.settings import Settings

CLERK = Actor(id="clerk-1", role=Role.INTAKE_CLERK, organisation="440103")
BY_CLERK = Provenance(actor=CLERK, reason="walk-in application", correlation_id="corr-1")

_sequence = itertools.count(1)


def resident_id(
    address: str = "440103", born: str | None = None, sequence: int | None = None
) -> str:
    """A valid resident ID; a new one each call (a new birth date every 1,000 numbers)."""
    n = next(_sequence) if sequence is None else sequence
    if born is None:
        born = (dt.date(1950, 1, 1) + dt.timedelta(days=n // 1000)).strftime("%Y%m%d")
    body = f"{address}{born}{n % 1000:03d}"
    return body + resident_id_check_character(body)


def village(county: str = "440103", township: str = "001", village_: str = "001") -> str:
    return f"{county}{township}{village_}"


APPROVER_440103 = Actor(id="approver-1", role=Role.APPROVER, organisation="440103")
SUPERVISOR = Actor(id="supervisor-1", role=Role.SUPERVISOR, organisation="4401")
OFFICER = Actor(id="officer-1", role=Role.HANDLING_STAFF, organisation="440103")
BY_OFFICER = Provenance(actor=OFFICER, reason="contract management")
BY_SUPERVISOR = Provenance(actor=SUPERVISOR, reason="supervision")
BY_APPROVER = Provenance(actor=APPROVER_440103)


def credit_code(category: str = "52", division: str = "440103", org: str | None = None) -> str:
    """A valid unified social credit code; a new organisation code each call."""
    from domain.credit_code import ALPHABET, credit_code_check_character

    if org is None:
        n = next(_sequence)
        org = "".join(ALPHABET[(n // 31**i) % 31] for i in range(9))[::-1]
    body = f"{category}{division}{org}"
    return body + credit_code_check_character(body)


def contractor_staff(code: str) -> Provenance:
    return Provenance(actor=Actor(id="worker-1", role=Role.CONTRACTOR_STAFF, organisation=code))


def approver(county: str = "440103", who: str = "approver-1") -> Provenance:
    return Provenance(
        actor=Actor(id=who, role=Role.APPROVER, organisation=county), reason="county decision"
    )


def officer(county: str = "440103", who: str = "officer-1") -> Provenance:
    return Provenance(actor=Actor(id=who, role=Role.HANDLING_STAFF, organisation=county))


IDENTITY_KEY = bytes(range(32))


# Bearer tokens ----------------------------------------------------------------------------------

#: The identity provider of the test suite: one Ed25519 key; the settings fixture trusts it.
TOKEN_KEY = Ed25519PrivateKey.generate()
TOKEN_PUBLIC_PEM = TOKEN_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def token(role: str, org: str, who: str, scope: str = "44", **claims: object) -> str:
    """A token as the province's identity provider would issue it (defaults of Settings)."""
    now = dt.datetime.now(dt.UTC)
    payload = {
        "iss": Settings.jwt_issuer,
        "aud": Settings.jwt_audience,
        "sub": who,
        "role": role,
        "org": org,
        "scope": scope,
        "iat": now,
        "exp": now + dt.timedelta(hours=1),
        **claims,
    }
    return jwt.encode(payload, TOKEN_KEY, algorithm="EdDSA")


# Staff records of the decision-makers -----------------------------------------------------------

#: The staff kind each acting role is hired as (domain/staff.py KINDS_OF_ROLE).
STAFF_KIND_OF_ROLE = {
    Role.APPROVER: "approver",
    Role.HANDLING_STAFF: "handling_staff",
    Role.INTAKE_CLERK: "handling_staff",
    Role.CONTRACTOR_STAFF: "handling_staff",
}


def hire_staff_for(
    services: Any,
    by: Provenance,
    *,
    division: str | None = None,
    contract_id: uuid.UUID | None = None,
    resident_id: str | None = None,
    name: str | None = None,
) -> Provenance:
    """``by`` as a staff record: hired by its county's bureau (or under ``contract_id``),
        assigned to ``division`` (the county unless given), and the same provenance with the
        record's id as the actor id, as the API records a linked sign-in. Every decision-maker on
        a case is a staff record (domain/staff.py ``check_decision_maker``). The same actor on the
        same services is hired once: the record is reused, as a person's sign-in is (until it is
    removed: then a new one is hired)."""
    from domain.commands.purchasing import AssignStaff, HireStaff

    actor = by.actor
    key = (actor.id, actor.role, actor.organisation, division, contract_id, resident_id)
    hired = _HIRED.setdefault(services, {})
    held = services.cases.acting_staff(Provenance(hired[key])) if key in hired else None
    if held is not None and held.removed_on is None:
        return dataclasses.replace(by, actor=hired[key])
    county = actor.organisation if contract_id is None else None
    manager = Provenance(
        actor=Actor(id="staff-manager", role=Role.HANDLING_STAFF, organisation=county or "44")
    )
    staff = services.purchasing.hire_staff(
        HireStaff(
            name=name or actor.id,
            kind=STAFF_KIND_OF_ROLE[actor.role],
            government_unit=county,
            contract_id=contract_id,
            resident_id=resident_id,
            provenance=manager,
        )
    )
    services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division=division or county or "", provenance=manager)
    )
    hired[key] = Actor(str(staff.id), actor.role, actor.organisation, subject=actor.id)
    return dataclasses.replace(by, actor=hired[key])


_HIRED: weakref.WeakKeyDictionary[Any, dict[tuple[object, ...], Actor]] = (
    weakref.WeakKeyDictionary()
)
