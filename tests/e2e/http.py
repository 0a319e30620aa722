"""What the in-process HTTP tests share: actors and assertions (the client is in conftest)."""

from __future__ import annotations

import weakref
from typing import Any

import jwt

from domain.errors import DomainError
from tests.factories import token


def _problem_types(kind: type[DomainError]) -> dict[str, type[DomainError]]:
    """Problem type (rule) → the class that names it: clients see its title for the type,
    whichever named rule under it refused."""
    found = {kind.rule: kind} if "rule" in vars(kind) else {}
    for sub in kind.__subclasses__():
        found.update({r: k for r, k in _problem_types(sub).items() if r not in found})
    return found


PROBLEM_TITLES = {
    rule: (kind.__doc__ or rule).strip().splitlines()[0]
    for rule, kind in _problem_types(DomainError).items()
}


def actor(
    role: str, org: str, who: str, correlation: str | None = None, scope: str = "44"
) -> dict[str, str]:
    """Headers of a caller with a bearer token (province-wide scope unless given)."""
    headers = {"Authorization": f"Bearer {token(role, org, who, scope)}"}
    if correlation:
        headers["X-Correlation-Id"] = correlation
    return headers


def subject(headers: dict[str, str]) -> str:
    """Who the caller's token says it is."""
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    return str(claims["sub"])


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: Any, status: int, rule: str) -> dict[str, Any]:
    """A problem+json refusal of the given rule."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{rule}", problem
    if rule in PROBLEM_TITLES:
        assert problem["title"] == PROBLEM_TITLES[rule], problem
    return problem


def reader(
    purpose: str = "case review",
    role: str = "handling_staff",
    org: str = "440103",
    who: str = "reader-1",
) -> dict[str, str]:
    """Headers of someone reading a case's personal data, with the stated purpose."""
    return {**actor(role, org, who), "X-Purpose": purpose}


def contracted(
    client: Any,
    officer: dict[str, str],
    *,
    name: str,
    work_items: list[str],
    service_area: list[str],
    start: str,
    end: str,
    value: str = "100000.00",
    awarded_on: str | None = None,
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A newly registered social organisation and the contract the county awards it:
    (credit code, contractor, contract) as the API answered them."""
    from tests.factories import credit_code

    code = credit_code("52")
    contractor = ok(
        client.post(
            "/contractors",
            headers=officer,
            json={"name": name, "contractor_type": "social_organisation", "credit_code": code},
        ),
        201,
    )
    award: dict[str, Any] = {
        "contractor_id": contractor["contractor_id"],
        "purchaser": "440103",
        "work_items": work_items,
        "service_area": service_area,
        "start": start,
        "end": end,
        "value": value,
        "funding_source": "special_relief_funds",
    }
    if awarded_on is not None:
        award["awarded_on"] = awarded_on
    contract = ok(client.post("/contracts", headers=officer, json=award), 201)
    return code, contractor, contract


def apply_at_window(
    client: Any,
    headers: dict[str, str],
    household_id: str,
    applicant_id: str,
    *,
    window: str = "440103001",
) -> dict[str, Any]:
    """A dibao application received at a township window (``POST /cases``, 201)."""
    return ok(
        client.post(
            "/cases",
            headers=headers,
            json={
                "household_id": household_id,
                "applicant_id": applicant_id,
                "programme": "dibao",
                "window_division": window,
            },
        ),
        201,
    )


def approve_over_http(
    client: Any,
    case_id: str,
    *,
    officer: dict[str, str],
    approver: dict[str, str],
    visited_at: str,
    start_date: str,
    household_size: int = 2,
    place: str = "440103001001",
) -> None:
    """Investigated with a home visit at ``visited_at``, recommended, and approved by the
    county at 960 a month from ``start_date`` (the officer and approver made staff records of
    the county first, unless they are already)."""
    hired(client, officer)
    hired(client, approver)
    ok(
        client.post(
            f"/cases/{case_id}/investigation",
            headers=officer,
            json={
                "income_items": [{"source": "casual work", "monthly_amount": "500"}],
                "assets": [],
                "household_size": household_size,
                "home_visit": {
                    "visited_at": visited_at,
                    "place": place,
                    "visitor_id": "officer-li",
                },
            },
        )
    )
    ok(
        client.post(
            f"/cases/{case_id}/recommendation",
            headers=officer,
            json={"recommendation": "approve", "monthly_amount": "960", "reasons": "below"},
        )
    )
    ok(
        client.post(
            f"/cases/{case_id}/approval",
            headers=approver,
            json={"monthly_amount": "960", "start_date": start_date, "reasons": "below"},
        )
    )


#: The staff kind each acting role is hired as (domain/staff.py KINDS_OF_ROLE).
_KIND_OF_ROLE = {
    "approver": "approver",
    "handling_staff": "handling_staff",
    "intake_clerk": "handling_staff",
    "contractor_staff": "handling_staff",
}
_HIRED: weakref.WeakKeyDictionary[Any, dict[tuple[object, ...], str]] = weakref.WeakKeyDictionary()


def hired(
    client: Any,
    headers: dict[str, str],
    *,
    division: str | None = None,
    contract_id: str | None = None,
    resident_id: str | None = None,
    manager: dict[str, str] | None = None,
) -> dict[str, str]:
    """The caller of ``headers`` made a staff record, as a bureau does before anyone decides
    a case: hired (by its county's bureau, or under ``contract_id``), assigned to ``division``
    (the county unless given), and its sign-in (the token's subject) linked to the record.
    Answers the same headers; the record is hired once per client. Its id: ``staff_id_of``."""
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    who, role, org = str(claims["sub"]), str(claims["role"]), str(claims["org"])
    key = (who, role, org, division, contract_id, resident_id)
    held = _HIRED.setdefault(client, {})
    if key in held:
        return headers
    county = org if contract_id is None else None
    by = manager or actor("handling_staff", county or "440103", "staff-manager")
    hire: dict[str, Any] = {"name": who[:100], "kind": _KIND_OF_ROLE[role]}
    hire.update({"contract_id": contract_id} if contract_id else {"government_unit": county})
    if resident_id is not None:
        hire["resident_id"] = resident_id
    staff = ok(client.post("/staff", headers=by, json=hire), 201)
    staff_id = staff["staff_id"]
    ok(
        client.post(
            f"/staff/{staff_id}/assignments",
            headers=by,
            json={"division": division or county},
        )
    )
    ok(client.post(f"/staff/{staff_id}/sign-ins", headers=by, json={"subject": who}))
    held[key] = staff_id
    _STAFF_OF.setdefault(client, {})[who] = staff_id
    return headers


_STAFF_OF: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def staff_id_of(client: Any, headers: dict[str, str]) -> str:
    """The id of the staff record ``hired`` made for the caller: the actor id of its events."""
    return _STAFF_OF[client][subject(headers)]


def count_hand_offs(monkeypatch: Any) -> list[object]:
    """The functions handed off to a worker thread from now on (anyio's ``run_sync``, which
    Starlette's and FastAPI's hand-offs go through), in order."""
    import anyio.to_thread

    hand_offs: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hand_offs.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hand_offs
