"""Supervision's views: an alert, an investigation with its cited alerts as they stand now, and
the contractor dossier (everything supervision holds on a contractor, on one timeline).

The caller loads the records the reader may see (scope is the API's business) and hands them
in with a cursor on the read models and a way to load an aggregate's history; these functions
only assemble.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor

from domain.contract import Contract
from domain.contractor import Contractor
from domain.investigation import Investigation
from projections.base import RecordedEvent
from projections.history import describe, jsonable, mask_text
from projections.red_flags.engine import local_time
from projections.red_flags.queries import alerts_by_id, contractor_services, query_alerts

#: Loads an aggregate's stored events with their places in the log (infra/history.py).
History = Callable[[UUID], list[RecordedEvent]]


def alert_view(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as shown: JSON, resident ID numbers in its free text masked."""
    view: dict[str, Any] = jsonable(dict(alert))
    view["reason"] = mask_text(view["reason"])
    view["review_reason"] = mask_text(view["review_reason"])
    return view


def investigation_view(cursor: Cursor[Any], investigation: Investigation) -> dict[str, Any]:
    """The investigation, with the cited alerts' current state (engine and review status)."""
    view: dict[str, Any] = mask_text(investigation.summary())
    now = alerts_by_id(cursor, list(investigation.alerts))
    for cited in view["alerts"]:
        current = now.get(UUID(cited["alert_id"]))
        cited["now"] = (
            None
            if current is None
            else {
                "status": current["status"],
                "review_status": current["review_status"],
                "last_seen": current["last_seen"].isoformat(),
            }
        )
    return view


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timeline(
    kind: str, aggregate_id: UUID, history: Sequence[RecordedEvent]
) -> list[dict[str, Any]]:
    """An aggregate's purchasing and supervision events as timeline items."""
    items = []
    for recorded in history:
        described = describe(recorded.event)
        if described is None:
            continue  # e.g. WorkTakenOn: the award or amendment already says it
        name, text = described
        provenance = recorded.event.provenance
        items.append(
            {
                "position": recorded.position,
                "at": recorded.timestamp.isoformat(),
                "kind": name,
                "record": {
                    "kind": kind,
                    "id": str(aggregate_id),
                    "version": recorded.originator_version,
                },
                "actor": {
                    "id": provenance.actor.id,
                    "role": provenance.actor.role.value,
                    "organisation": provenance.actor.organisation,
                },
                "description": _short(mask_text(text)),
            }
        )
    return items


def _service_item(service: dict[str, Any]) -> dict[str, Any]:
    voided = (
        f" (voided at position {service['voided_at_position']})"
        if service["voided_at_position"]
        else ""
    )
    return {
        "position": service["position"],
        "at": jsonable(service["recorded_at"]),
        "kind": "service",
        "record": {"kind": "case", "id": str(service["case_id"]), "version": None},
        "actor": {"id": service["staff"]},
        "description": f"{service['work_item']} at {service['place']}, "
        f"{local_time(service['start'])} to {local_time(service['end'])}, under "
        f"contract {service['contract_id']}{voided}",
    }


def _alert_item(alert: dict[str, Any]) -> dict[str, Any]:
    return {
        # An alert stands once its last piece of evidence is in the log.
        "position": max(alert["evidence"]),
        "at": alert["last_seen"].isoformat(),
        "kind": "alert",
        "record": {"kind": "alert", "id": str(alert["alert_id"]), "version": None},
        "actor": None,
        "description": _short(
            f"{alert['rule']} ({alert['severity']}, {alert['status']}, "
            f"{alert['review_status']}): {mask_text(alert['reason'])}"
        ),
    }


def contractor_dossier(
    cursor: Cursor[Any],
    history: History,
    *,
    contractor: Contractor,
    contracts: Sequence[Contract],
    investigations: Sequence[Investigation],
    today: dt.date,
    scope: str,
    unplaced: bool,
    limit: int,
) -> dict[str, Any]:
    """The dossier of ``contractor`` from the contracts and investigations the reader may
    see, and the services and alerts in the reader's scope (``scope``, ``unplaced`` as
    api/access.py ``alert_scope`` says): the register entry, contracts with their term
    histories, sanctions, and one timeline in log order (the newest ``limit`` items)."""
    items = timeline("contractor", contractor.id, history(contractor.id))
    for contract in contracts:
        items.extend(timeline("contract", contract.id, history(contract.id)))
    visible = {contract.id for contract in contracts}
    services, services_total = contractor_services(cursor, contractor.id, limit=limit)
    shown_services = [s for s in services if s["contract_id"] in visible]
    items.extend(_service_item(service) for service in shown_services)
    alerts: list[dict[str, Any]] = []
    token = None
    while True:
        page, token = query_alerts(
            cursor,
            contractor_id=contractor.id,
            scope=scope,
            unplaced=unplaced,
            limit=1000,
            after=token,
        )
        alerts.extend(page)
        if token is None or len(alerts) >= limit:
            break
    items.extend(_alert_item(alert) for alert in alerts)
    for investigation in investigations:
        items.extend(timeline("investigation", investigation.id, history(investigation.id)))
    # Log order; an alert after the event that completed its evidence (same position).
    items.sort(key=lambda item: (item["position"], item["kind"] == "alert", item["record"]["id"]))
    summaries: list[dict[str, Any]] = [contract.summary(today) for contract in contracts]
    register_entry: dict[str, Any] = contractor.summary(today)
    return {
        "contractor": register_entry,
        "contracts": summaries,
        "alerts": [alert_view(a) for a in alerts],
        "investigations": [investigation_view(cursor, i) for i in investigations],
        "services": {"total_recorded": services_total, "shown": len(shown_services)},
        "sanctions": {
            "violations": [
                {"contract_id": c["contract_id"], **v} for c in summaries for v in c["violations"]
            ],
            "penalties": [
                {"contract_id": c["contract_id"], **p} for c in summaries for p in c["penalties"]
            ],
            "terminations": [
                {"contract_id": c["contract_id"], "terminated_at": c["terminated_at"]}
                for c in summaries
                if c["terminated_at"]
            ],
            "bans": register_entry["bans"],
        },
        "timeline": items[-limit:],
        "truncated": len(items) > limit,
    }
