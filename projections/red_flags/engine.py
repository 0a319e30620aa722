"""The rule engine: rules, their findings, and the alerts table they raise and clear.

A rule is a small named unit (``Rule`` subclass) with a severity, the kind of subject it points
at and a documented reason. It *consumes events* through trigger methods, marked with
``triggered_by(EventClass, ...)``, each returning the *scopes* the event may have changed (a
case id, a contract id, "actor|day" ...). For each scope the engine calls ``evaluate``, which
reads the rule's state (the fact tables of facts.py, already updated with the event) and returns
every finding in that scope; the alerts writer then makes the ``alerts`` table agree: findings
are raised (or refreshed when their reason or evidence changed), open alerts of the scope that
are no longer found are cleared.

Because a scope is always re-evaluated as a whole from stored facts, an alert depends on the
facts, not on the order they arrived in: a death recorded after payments dated later, a ban or
termination recorded after the work, a correction voiding a record, all land on the same
alerts. Evaluation is deterministic (no wall clock, no randomness, scopes and findings sorted),
and applying an event twice changes nothing the second time.

Alert ids are uuid5(rule name + finding key), so a replay or a rebuild gives the same ids.
``first_seen``/``last_seen`` are the timestamps of the earliest and the latest event the alert
cites as evidence (recorded times from the log, never the wall clock), so they too follow from
the facts and not from the order of arrival. ``status`` is the engine's own: ``open`` or
``cleared``; a reviewer's verdict (under review, confirmed, dismissed) is kept apart, in the
``alert_reviews`` table keyed by ``alert_id`` (reviews.py), which stays stable across rebuilds.

Order of arrival: the PostgreSQL feed applies the log in position order, so a replay or a
rebuild gives identical tables. The Kafka feed keeps each aggregate's order but interleaves
aggregates differently; the open alerts come out the same (they are functions of the facts),
but an alert raised and later cleared on one path may never have been raised on another, so
the set of *cleared* alerts (and the evidence a cleared alert keeps) can differ between feeds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from psycopg import Cursor

from domain.clock import BUSINESS_TZ
from projections.base import RecordedEvent
from projections.red_flags.config import RedFlagsConfig
from projections.red_flags.reviews import REVIEWS_DDL

#: Namespace of alert ids: uuid5(ALERT_NAMESPACE, "<rule>|<key>").
ALERT_NAMESPACE = uuid.UUID("6a1f3c2e-0b7d-5e44-9c1a-7f2d3b8e4a10")

SEVERITIES = ("high", "medium", "low")
SUBJECT_KINDS = ("contractor", "staff", "case", "contract", "person", "division")

T = TypeVar("T", bound=Callable[..., Iterable[str]])


def triggered_by(*event_classes: type) -> Callable[[T], T]:
    """Mark a rule method as a trigger: called with (cursor, recorded) for these event
    classes, it returns the scopes the event may have changed."""

    def mark(method: T) -> T:
        method.__dict__.setdefault("_handles", []).extend(event_classes)
        return method

    return mark


ALERTS_DDL = (
    f"""CREATE TABLE alerts (
        alert_id uuid PRIMARY KEY,
        rule text NOT NULL,
        key text COLLATE "C" NOT NULL,
        severity text NOT NULL CHECK (severity IN {SEVERITIES}),
        subject_kind text NOT NULL CHECK (subject_kind IN {SUBJECT_KINDS}),
        subject_id text NOT NULL,
        contractor_id uuid,
        county text CHECK (county ~ '^[0-9]{{6}}$'),
        reason text NOT NULL,
        evidence bigint[] NOT NULL,
        first_seen timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        status text NOT NULL CHECK (status IN ('open', 'cleared')),
        UNIQUE (rule, key)
    )""",
    "CREATE INDEX alerts_recent ON alerts (first_seen DESC, alert_id DESC)",
    "CREATE INDEX alerts_contractor ON alerts (contractor_id, first_seen DESC)"
    " WHERE contractor_id IS NOT NULL",
    "CREATE INDEX alerts_county ON alerts (county text_pattern_ops) WHERE county IS NOT NULL",
    "CREATE INDEX alerts_subject ON alerts (subject_kind, subject_id)",
    # When each event the projection read was recorded: first_seen/last_seen of evidence.
    "CREATE TABLE rf_event_time (position bigint PRIMARY KEY, at timestamptz NOT NULL)",
    # The reviewer's status of each alert (reviews.py).
    *REVIEWS_DDL,
)


def key_part(text: str) -> str:
    """A free-text component of a key (an actor id) with '|' escaped, so that keys split
    unambiguously and a scope's range never takes in another subject's keys."""
    return text.replace("%", "%25").replace("|", "%7C")


def unkey_part(part: str) -> str:
    """The text ``key_part`` escaped."""
    return part.replace("%7C", "|").replace("%25", "%")


def local_time(moment: dt.datetime) -> str:
    """A time for a reason text: Guangdong's clock (UTC+8), to the second."""
    return moment.astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


def majority(values: Iterable[Any]) -> Any:
    """The most frequent non-null value; ties go to the smallest as text (deterministic)."""
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return min((v for v, n in counts.items() if n == top), key=str)


def alert_id(rule: str, key: str) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{rule}|{key}")


@dataclass(frozen=True)
class Finding:
    """One thing a rule found: becomes (or refreshes) one alert."""

    key: str  # unique within the rule; starts with the scope it was found in
    subject_kind: str
    subject_id: str
    reason: str
    evidence: tuple[int, ...]  # global positions of the events behind it
    contractor_id: uuid.UUID | None = None
    county: str | None = None


Trigger = Callable[[Any, Cursor[Any], RecordedEvent], Iterable[str]]


def collect_handlers(cls: type) -> dict[type, tuple[Callable[..., Any], ...]]:
    """Methods marked with ``handles``/``triggered_by`` along the MRO, by event class."""
    found: dict[type, list[Callable[..., Any]]] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attribute_name, attribute in vars(klass).items():
            if attribute_name in seen:
                continue  # overridden in a subclass: the subclass's method counts
            seen.add(attribute_name)
            for event_class in getattr(attribute, "_handles", ()):
                found.setdefault(event_class, []).append(attribute)
    return {event_class: tuple(methods) for event_class, methods in found.items()}


class Rule:
    """A named red-flag rule. Subclasses set the class attributes and ``evaluate``."""

    #: Stable name (goes into alert ids: never rename a shipped rule).
    name: ClassVar[str]
    severity: ClassVar[str]
    subject_kind: ClassVar[str]
    #: What the rule finds and why a supervisor should look (the reason text of its alerts
    #: restates it with the facts of the case).
    description: ClassVar[str]
    _triggers: ClassVar[dict[type, tuple[Callable[..., Any], ...]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._triggers = collect_handlers(cls)

    def __init__(self, config: RedFlagsConfig) -> None:
        self.config = config

    @classmethod
    def events(cls) -> set[type]:
        return set(cls._triggers)

    def scopes(self, cursor: Cursor[Any], recorded: RecordedEvent) -> list[str]:
        """Every scope this event may have changed, sorted."""
        scopes: set[str] = set()
        for trigger in self._triggers.get(type(recorded.event), ()):
            scopes.update(trigger(self, cursor, recorded))
        return sorted(scopes)

    def evaluate(self, cursor: Cursor[Any], scope: str) -> list[Finding]:
        raise NotImplementedError

    def finding(
        self,
        key: str,
        subject_id: object,
        reason: str,
        evidence: Iterable[int | None],
        *,
        contractor_id: uuid.UUID | None = None,
        county: str | None = None,
    ) -> Finding:
        return Finding(
            key=key,
            subject_kind=self.subject_kind,
            subject_id=str(subject_id),
            reason=reason,
            evidence=tuple(sorted({int(p) for p in evidence if p is not None})),
            contractor_id=contractor_id,
            county=county,
        )


class AlertWriter:
    """Makes the alerts of one rule and scope agree with the rule's findings."""

    def sync(
        self,
        cursor: Cursor[Any],
        rule: Rule,
        scope: str,
        findings: Sequence[Finding],
    ) -> None:
        keys: list[str] = []
        for finding in sorted(findings, key=lambda f: f.key):
            if not (finding.key == scope or finding.key.startswith(scope + "|")):
                raise ValueError(f"{rule.name}: finding {finding.key!r} lies outside {scope!r}")
            if keys and keys[-1] == finding.key:
                raise ValueError(f"{rule.name}: two findings with key {finding.key!r}")
            keys.append(finding.key)
            self.raise_alert(cursor, rule, finding)
        # Clear what is no longer found. key COLLATE "C": '|' < '}' bounds the scope's keys.
        cursor.execute(
            "UPDATE alerts SET status = 'cleared'"
            " WHERE rule = %s AND status = 'open'"
            " AND (key = %s OR (key > %s AND key < %s)) AND NOT (key = ANY(%s))",
            (rule.name, scope, scope + "|", scope + "}", keys),
        )

    @staticmethod
    def raise_alert(cursor: Cursor[Any], rule: Rule, finding: Finding) -> None:
        """Insert the alert, or refresh it when anything about it changed (reopening it)."""
        if not finding.evidence:
            raise ValueError(f"{rule.name}: finding {finding.key!r} cites no event")
        cursor.execute(
            # The alert's review row (unreviewed until an investigation cites it) is added
            # with the alert; reviews.py keeps it.
            "WITH raised AS (INSERT INTO alerts (alert_id, rule, key, severity, subject_kind,"
            " subject_id,"
            " contractor_id, county, reason, evidence, first_seen, last_seen, status)"
            " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::bigint[], min(at), max(at), 'open'"
            " FROM rf_event_time WHERE position = ANY(%s::bigint[])"
            " ON CONFLICT (alert_id) DO UPDATE SET severity = excluded.severity,"
            " subject_kind = excluded.subject_kind, subject_id = excluded.subject_id,"
            " contractor_id = excluded.contractor_id, county = excluded.county,"
            " reason = excluded.reason, evidence = excluded.evidence, status = 'open',"
            " first_seen = excluded.first_seen, last_seen = excluded.last_seen"
            " WHERE (alerts.severity, alerts.subject_kind, alerts.subject_id,"
            " alerts.contractor_id, alerts.county, alerts.reason, alerts.evidence, alerts.status)"
            " IS DISTINCT FROM (excluded.severity, excluded.subject_kind, excluded.subject_id,"
            " excluded.contractor_id, excluded.county, excluded.reason, excluded.evidence,"
            " 'open') RETURNING alert_id)"
            " INSERT INTO alert_reviews (alert_id) SELECT alert_id FROM raised"
            " ON CONFLICT (alert_id) DO NOTHING",
            (
                alert_id(rule.name, finding.key),
                rule.name,
                finding.key,
                rule.severity,
                finding.subject_kind,
                finding.subject_id,
                finding.contractor_id,
                finding.county,
                finding.reason,
                list(finding.evidence),
                list(finding.evidence),
            ),
        )


class Engine:
    """Applies one event: facts first, then every rule it triggers, scope by scope."""

    def __init__(self, facts: Any, rules: Sequence[Rule]) -> None:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError("two rules share a name")
        self.facts = facts
        self.rules = list(rules)
        self.writer = AlertWriter()

    def events(self) -> set[type]:
        events = set(self.facts.events())
        for rule in self.rules:
            events |= rule.events()
        return events

    def apply(self, cursor: Cursor[Any], recorded: RecordedEvent) -> None:
        cursor.execute(
            "INSERT INTO rf_event_time (position, at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (recorded.position, recorded.timestamp),
        )
        self.facts.apply(cursor, recorded)
        for rule in self.rules:
            for scope in rule.scopes(cursor, recorded):
                self.writer.sync(cursor, rule, scope, rule.evaluate(cursor, scope))
