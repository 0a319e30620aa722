"""Who is calling. Development identity from headers until bearer tokens land (issue: security).

Every command needs an actor; it is recorded on the events the command produces.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from domain.errors import DomainError, InvalidValue
from domain.provenance import Actor, Role


class Unauthenticated(DomainError):
    """The request does not say who is acting."""

    rule = "unauthenticated"


def current_actor(
    x_actor_id: Annotated[str | None, Header(max_length=200)] = None,
    x_actor_role: Annotated[str | None, Header(max_length=50)] = None,
    x_actor_organisation: Annotated[str | None, Header(max_length=200)] = None,
) -> Actor:
    if not (x_actor_id and x_actor_role and x_actor_organisation):
        raise Unauthenticated(
            "X-Actor-Id, X-Actor-Role and X-Actor-Organisation headers are required",
            field="X-Actor-Id",
        )
    try:
        role = Role(x_actor_role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidValue(
            f"unknown role {x_actor_role!r}; expected one of {allowed}", field="X-Actor-Role"
        ) from None
    return Actor(id=x_actor_id, role=role, organisation=x_actor_organisation)
