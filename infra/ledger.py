"""The event-sourced application: one global ordered log for every aggregate.

A thin service layer in the style of eventsourcing's examples: each method loads aggregates,
calls their command methods and saves the new events atomically. Optimistic concurrency is the
library's: a second writer of the same aggregate version fails on the primary key.
"""

from __future__ import annotations

from infra.purchasing import PurchasingCommands
from infra.relief_cases import CaseCommands
from infra.supervision import SupervisionCommands


class ReliefLedger(CaseCommands, PurchasingCommands, SupervisionCommands):
    name = "relief"  # the library derives the table name from it; every subclass restates it
