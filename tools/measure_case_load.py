"""Time loading one 200-event relief case, beside a raw SELECT of its rows (same run, ratio).

A case carried to approval, then monthly payments with a service every eighth event and a
payment correction every twenty-fifth, up to 200 events, written through the application on a
fresh embedded PostgreSQL. Ours: the application loads the case from the store (no aggregate
cache: every load reads, decrypts, decodes and replays all 200 events). Baseline, interleaved:
a raw SELECT of the same 200 rows on a psycopg connection. Loads per second are noisy on a
shared machine: compare the ratio.

    .venv/bin/python tools/measure_case_load.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.case import Asset, HomeVisit, IncomeItem, MeansTest, PaymentCorrection
from domain.commands.cases import (
    ApproveCase,
    CorrectCaseRecord,
    InvestigateCase,
    ReceiveApplication,
    RecommendCase,
    RecordPayment,
    RecordService,
    RegisterHousehold,
)
from domain.household import HouseholdMember
from domain.identifiers import resident_id_check_character
from domain.provenance import Actor, Provenance, Role
from infra.embedded_postgres import start_embedded_postgres
from infra.runtime import Runtime
from infra.settings import Settings
from tools.synthetic.staff import as_staff

EVENTS = 200
COUNTY = "440103"


def write_case(runtime: Runtime) -> UUID:
    village = f"{COUNTY}001001"
    clerk = Provenance(Actor("clerk", Role.INTAKE_CLERK, COUNTY))
    officer = as_staff(runtime.services, Provenance(Actor("officer", Role.HANDLING_STAFF, COUNTY)))
    approver = as_staff(runtime.services, Provenance(Actor("approver", Role.APPROVER, COUNTY)))
    body = f"{COUNTY}19500101123"
    person = body + resident_id_check_character(body)
    home = runtime.services.cases.register_household(
        RegisterHousehold(
            registered_division=village,
            residence_division=village,
            members=(HouseholdMember(person, "陈长案", "head"),),
            provenance=clerk,
        )
    )
    case = runtime.services.cases.receive_application(
        ReceiveApplication(
            household_id=home.id,
            applicant_id=person,
            programme="dibao",
            window_division=village[:9],
            provenance=clerk,
        )
    )
    now = runtime.services.clock.now()
    runtime.services.cases.investigate_case(
        InvestigateCase(
            case_id=case.id,
            means_test=MeansTest(
                (IncomeItem("wages", Decimal("300")), IncomeItem("rent", Decimal("50"))),
                (Asset("savings", Decimal("1000")),),
                1,
                HomeVisit(now - dt.timedelta(hours=1), village, "officer"),
            ),
            contract_id=None,
            provenance=officer,
        )
    )
    runtime.services.cases.recommend_case(
        RecommendCase(
            case_id=case.id,
            recommendation="approve",
            reasons="below the line",
            monthly_amount=Decimal("700"),
            contract_id=None,
            provenance=officer,
        )
    )
    case = runtime.services.cases.approve_case(
        ApproveCase(
            case_id=case.id,
            monthly_amount=Decimal("700"),
            start_date=dt.date(2005, 1, 1),
            reasons="below the line",
            provenance=approver,
        )
    )
    month, last_payment = 0, 0
    while case.version < EVENTS:
        if case.version % 25 == 0 and last_payment:
            case = runtime.services.cases.correct_case_record(
                CorrectCaseRecord(
                    case_id=case.id,
                    corrects_version=last_payment,
                    correction=PaymentCorrection(Decimal("650")),
                    reason="paid too much",
                    provenance=officer,
                )
            )
        elif case.version % 8 == 0:
            start = now - dt.timedelta(days=case.version, hours=3)
            case = runtime.services.cases.record_service(
                RecordService(
                    case_id=case.id,
                    work_item="care_and_nursing",
                    contract_id=None,
                    start=start,
                    end=start + dt.timedelta(hours=2),
                    place=village,
                    provenance=officer,
                )
            )
        else:
            period = f"{2005 + month // 12}-{month % 12 + 1:02d}"
            month += 1
            case = runtime.services.cases.record_payment(
                RecordPayment(
                    case_id=case.id, period=period, amount=Decimal("700"), provenance=officer
                )
            )
            last_payment = case.version
    assert case.version == EVENTS
    return case.id


def decode_and_replay(runtime: Runtime, rows: list[tuple[Any, ...]], rounds: int) -> float:
    """CPU seconds per load spent turning the stored rows into the case (median of rounds)."""
    from eventsourcing.persistence import StoredEvent

    from infra.ledger import replay

    stored = [StoredEvent(i, v, t, bytes(s)) for i, v, t, s in rows]
    mapper = runtime.ledger.mapper
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        replay(None, [mapper.to_domain_event(e) for e in stored])
        spent.append(time.process_time() - started)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = start_embedded_postgres(Path(scratch) / "pg", cleanup_mode="delete")
        settings = Settings(database_url=url, data_dir=Path(scratch) / "data", aggregate_cache=0)
        runtime = Runtime.open(settings)
        try:
            case_id = write_case(runtime)
            import psycopg

            with psycopg.connect(url) as conn:
                ours, raw = [], []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    case = runtime.ledger.get_case(case_id)
                    ours.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    rows = conn.execute(
                        "SELECT originator_id, originator_version, topic, state"
                        " FROM public.relief_events WHERE originator_id = %s"
                        " ORDER BY originator_version",
                        (case_id,),
                    ).fetchall()
                    raw.append(time.perf_counter() - started)
                assert case.version == len(rows) == EVENTS
            decode = decode_and_replay(runtime, rows, args.rounds)
        finally:
            runtime.close()
    print(f"decrypt, decode and replay only (CPU time, no database): {decode * 1e3:.2f} ms")
    load, select = statistics.median(ours) * 1e3, statistics.median(raw) * 1e3
    print(
        f"200-event case load: median {load:.2f} ms (p90 "
        f"{statistics.quantiles(ours, n=10)[-1] * 1e3:.2f}); raw SELECT {select:.2f} ms; "
        f"ratio {load / select:.1f}x over {args.rounds} rounds"
    )


if __name__ == "__main__":
    main()
