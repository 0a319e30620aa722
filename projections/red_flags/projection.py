"""The red-flags projection (疑点提示): one projection, every rule, one alerts table.

A flag is a lead for a supervisor to review, never a sanction: the engine raises and clears
alerts, people decide (the investigations' verdicts land in ``alert_reviews``, reviews.py).
See engine.py for how rules run, facts.py for the state they keep, config.py for the
thresholds (changing them takes a rebuild), and each rule module for what it looks for and the
test it applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.types.json import Jsonb

from projections.base import Projection, RecordedEvent, handles
from projections.red_flags import (
    approval_rate,
    bunching,
    conflict,
    contract_scope,
    eligibility,
    household,
    money,
    people,
    place,
    workload,
)
from projections.red_flags.config import DEFAULT_CONFIG_FILE, RedFlagsConfig, load_config
from projections.red_flags.engine import ALERTS_DDL, Engine, Rule, collect_handlers
from projections.red_flags.facts import FACT_TABLES, FactStore
from projections.red_flags.reviews import REVIEW_EVENTS, apply_review
from projections.sets import Read, Step

#: Every rule, in the order the engine runs them (fixed: part of determinism).
ALL_RULES: tuple[type[Rule], ...] = (
    *people.RULES,
    *eligibility.RULES,
    *household.RULES,
    *contract_scope.RULES,
    *workload.RULES,
    *place.RULES,
    *approval_rate.RULES,
    *bunching.RULES,
    *conflict.RULES,
    *money.RULES,
)


def rule_catalogue() -> list[dict[str, str]]:
    """Every rule with its severity, subject and documented reason (for readers of alerts)."""
    return [
        {
            "rule": rule.name,
            "severity": rule.severity,
            "subject_kind": rule.subject_kind,
            "description": rule.description,
        }
        for rule in ALL_RULES
    ]


def handled_events() -> list[type]:
    events = set(collect_handlers(FactStore))
    for rule in ALL_RULES:
        events |= rule.events()
    return sorted(events, key=get_topic)


class ConfigurationChanged(RuntimeError):
    """The projection runs with other thresholds than its generation was built with."""


class RedFlagsProjection(Projection):
    name = "red_flags"
    tables = (*FACT_TABLES, *ALERTS_DDL)
    #: alerts and their reviews for readers; the service records and event times of the facts
    #: for the contractor dossier (api/routes/supervision.py).
    views = ("alerts", "alert_reviews", "rf_record", "rf_event_time")

    #: Where the thresholds are read from at construction.
    config_file: ClassVar[Path] = DEFAULT_CONFIG_FILE
    #: A configuration to use instead of the file (tests; a subclass sets it).
    preset_config: ClassVar[RedFlagsConfig | None] = None

    def __init__(self) -> None:
        self.config = self.preset_config or load_config(self.config_file)
        self.engine = Engine(FactStore(self.config), [rule(self.config) for rule in ALL_RULES])
        self._engine_events = frozenset(self.engine.events())

    def _check_configuration(self, cursor: Cursor[Any]) -> Step[None]:
        """Once per batch (read with the batch's facts): the generation's configuration must
        be this one; a new generation records it."""
        rows = yield Read("SELECT fingerprint FROM rf_config")
        if not rows:
            cursor.execute(
                "INSERT INTO rf_config (fingerprint, document) VALUES (%s, %s)",
                (self.config.fingerprint, Jsonb(self.config.as_document())),
            )
        elif rows[0][0] != self.config.fingerprint:
            raise ConfigurationChanged(
                "the red-flag thresholds differ from those this generation was built with; "
                "rebuild it (relief projections rebuild red_flags) to apply them"
            )

    @handles(*handled_events(), *REVIEW_EVENTS)
    def reads(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        """Declares the events this projection reads; ``apply_batch`` applies them."""
        raise NotImplementedError

    @classmethod
    def rebuild_stages(cls) -> tuple[type[Projection], type[Projection]]:
        """A rebuild in two processes: the facts, and behind them the rules (see
        ``Projection.rebuild_stages``; the rules judge every scope the events trigger from
        the facts as stored, so facts of later events only make a scope's judgement that of
        a larger batch). Stages of this class: its thresholds."""
        return _stages(cls)

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        engine_events = [r for r in events if type(r.event) in self._engine_events]
        if engine_events:
            self.engine.apply_batch(cursor, engine_events, self._check_configuration(cursor))
        self._apply_reviews(cursor, events)

    @staticmethod
    def _apply_reviews(cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            # Investigations citing and judging alerts: the reviewer's status (reviews.py).
            if type(recorded.event) in REVIEW_EVENTS:
                apply_review(cursor, recorded)


_STAGES: dict[type[RedFlagsProjection], tuple[type[Projection], type[Projection]]] = {}


def _stages(cls: type[RedFlagsProjection]) -> tuple[type[Projection], type[Projection]]:
    if cls not in _STAGES:
        _STAGES[cls] = (
            type(f"{cls.__name__}Facts", (_FactsStage, cls), {}),
            type(f"{cls.__name__}Rules", (_RulesStage, cls), {}),
        )
    return _STAGES[cls]


class _FactsStage(RedFlagsProjection):
    """A rebuild's first stage: the facts (and the configuration's check)."""

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        engine_events = [r for r in events if type(r.event) in self._engine_events]
        if engine_events:
            self.engine.apply_facts(cursor, engine_events, self._check_configuration(cursor))


class _RulesStage(RedFlagsProjection):
    """A rebuild's second stage, behind the first: the rules' alerts and the reviews."""

    @classmethod
    def event_fields(cls) -> dict[type, frozenset[str]]:
        """The rules read of most events their class, aggregate and position only (the facts
        are the first stage's; events only the facts read come too, as the stage follows the
        same topics): of the others, the fields their triggers name. The reviews read their
        events whole."""
        fields: dict[type, set[str]] = {event_class: set() for event_class in handled_events()}
        for rule in ALL_RULES:
            for event_class, read in rule.fields_read().items():
                fields[event_class].update(read)
        return {
            event_class: frozenset(read)
            for event_class, read in fields.items()
            if event_class not in REVIEW_EVENTS
        }

    def apply_batch(self, cursor: Cursor[Any], events: Sequence[RecordedEvent]) -> None:
        engine_events = [r for r in events if type(r.event) in self._engine_events]
        if engine_events:
            self.engine.judge_batch(cursor, engine_events)
        self._apply_reviews(cursor, events)
