"""The application services: typed commands in, aggregates' events saved, one module per
aggregate family (cases and households, purchasing, supervision, policy, standards).

Each handler is a method named after its command (``cases.record_payment(RecordPayment(...))``):
it loads the aggregates the command concerns from the store, calls their command methods (the
domain's rules and events), and saves the new events of every aggregate it touched in one
atomic save. The services read the business clock given to them, never the system's; the
composition root (infra/runtime.py) builds them over the store it opened.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import Clock
from domain.contract import DEFAULT_LATE_ENTRY_DAYS
from domain.division import DivisionCatalogue
from services.cases import CaseService
from services.divisions import DivisionService
from services.policy import PolicyService
from services.purchasing import PurchasingService
from services.standards import StandardsService
from services.store import Store
from services.supervision import SupervisionService


@dataclass(frozen=True)
class Services:
    clock: Clock
    cases: CaseService
    purchasing: PurchasingService
    supervision: SupervisionService
    policy: PolicyService
    divisions: DivisionService
    standards: StandardsService

    @classmethod
    def over(
        cls,
        store: Store,
        *,
        clock: Clock,
        identity_key: bytes,
        register: DivisionCatalogue,
        late_entry_days: int = DEFAULT_LATE_ENTRY_DAYS,
    ) -> Services:
        divisions = DivisionService(store, register)
        purchasing = PurchasingService(store, clock, divisions, late_entry_days, identity_key)
        return cls(
            clock=clock,
            divisions=divisions,
            cases=CaseService(store, clock, identity_key, purchasing.contract_check, divisions),
            purchasing=purchasing,
            supervision=SupervisionService(store, identity_key),
            policy=PolicyService(store),
            standards=StandardsService(store, divisions),
        )
