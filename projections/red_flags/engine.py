"""The rule engine: rules, their findings, and the alerts table they raise and clear.

A rule is a small named unit (``Rule`` subclass) with a severity, the kind of subject it points
at and a documented reason. It *consumes events* through trigger methods, marked with
``triggered_by(EventClass, ...)``, each given the batch's events of those classes and returning
the *scopes* they may have changed (a case id, a contract id, "actor|day" ...).

The engine applies a whole batch as sets: the facts first (facts.py: each table written once),
then every rule's scopes, de-duplicated over the batch. Each touched scope is judged once per
batch: the rules of one family (those sharing a ``candidates`` query) read, in one statement
over all their scopes, only the rows that may be violations; each rule's ``judge`` turns them
into every finding in its scopes. The alerts writer then makes the ``alerts`` table agree, once
per batch for every rule: findings are raised (or refreshed when their reason or evidence
changed), open alerts of the judged scopes that are no longer found are cleared.

An alert raised and cleared inside one batch is never written: the batch is judged as it stands
at its end. So the *open* alerts never depend on batch boundaries, but which alerts were once
raised and later cleared does (a batch of one event judges after every event).

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

Order of arrival: the PostgreSQL feed applies the log in position order; the Kafka feed keeps
each aggregate's order but interleaves aggregates differently. The open alerts come out the
same on every path (they are functions of the facts), but an alert raised and later cleared on
one path may never have been raised on another, so the set of *cleared* alerts (and the
evidence a cleared alert keeps) can differ between feeds and batch sizes.
"""

from __future__ import annotations

import datetime as dt
import functools
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
from projections.sets import Read, Step, columns_of, run_together, together, unnest

#: Namespace of alert ids: uuid5(ALERT_NAMESPACE, "<rule>|<key>").
ALERT_NAMESPACE = uuid.UUID("6a1f3c2e-0b7d-5e44-9c1a-7f2d3b8e4a10")

SEVERITIES = ("high", "medium", "low")
SUBJECT_KINDS = ("contractor", "staff", "case", "contract", "person", "division")

T = TypeVar("T", bound=Callable[..., Any])


def triggered_by(
    *event_classes: type, reads: Sequence[str] = (), shared: bool = False
) -> Callable[[T], T]:
    """Mark a rule method as a trigger: called once per batch with (cursor, events), the
    batch's events of these classes, it returns the scopes they may have changed (at most one
    statement for the whole batch), or, when it reads, a step yielding its ``Read``s
    (``projections.sets.run_together``: every rule's reads of a batch are sent together).
    ``reads``: the fields of the events it reads (beyond their position, aggregate and
    class): a rebuild's rules stage decodes only those (``Rule.fields_read``). ``shared``: its
    scopes follow from the events alone, never from the rule (its ``self``), so the rules that
    inherit it call it once per batch between them (``Engine.judge_batch``)."""

    def mark(method: T) -> T:
        method.__dict__.setdefault("_handles", []).extend(event_classes)
        method.__dict__["_shared"] = method.__dict__.get("_shared", False) or shared
        method.__dict__.setdefault("_reads", set()).update(
            (event_class, field) for event_class in event_classes for field in reads
        )
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
    # The open alerts of a rule: whether it has any (a batch clears only those rules'), and
    # those inside the judged scopes.
    "CREATE INDEX alerts_open ON alerts (rule, key) WHERE status = 'open'",
    # When each event the projection read was recorded: first_seen/last_seen of evidence. The
    # events of records keep their time in their rf_record row instead (recorded_at): most
    # events are records, and this table's rows were a fifth of a batch's writes.
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


#: An id as the text of scopes and keys. Remembered: several rules make scopes of the same
#: events' ids in every batch, and ``UUID.__str__`` (in Python) was a twentieth of the
#: projection's time in catch-up.
id_text: Callable[[uuid.UUID], str] = functools.lru_cache(maxsize=1 << 16)(str)


def originators(events: Iterable[RecordedEvent]) -> list[str]:
    """The events' aggregate ids as scopes, each once (a batch often holds many events of one
    aggregate)."""
    return [id_text(originator) for originator in {r.originator_id for r in events}]


def in_scopes(key: str, scopes: set[str]) -> bool:
    """Whether ``key`` is one of ``scopes`` or lies inside one ("scope|...")."""
    cut = len(key)
    while cut > 0:
        if key[:cut] in scopes:
            return True
        cut = key.rfind("|", 0, cut)
    return False


class Rule:
    """A named red-flag rule. Subclasses set the class attributes, ``candidates`` (or inherit
    their family's) and ``judge``."""

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

    @classmethod
    def fields_read(cls) -> dict[type, set[str]]:
        """The fields of each class of events its triggers read (``triggered_by(reads=)``)."""
        fields: dict[type, set[str]] = {event_class: set() for event_class in cls._triggers}
        for triggers in cls._triggers.values():
            for trigger in triggers:
                for event_class, field in getattr(trigger, "_reads", ()):
                    fields[event_class].add(field)
        return fields

    def trigger_calls(
        self, batch: dict[type, list[RecordedEvent]]
    ) -> list[tuple[Callable[..., Any], list[RecordedEvent]]]:
        """The triggers the batch's events (by class) call, each with its events."""
        events: dict[Callable[..., Any], list[RecordedEvent]] = {}
        for event_class, triggers in self._triggers.items():
            for trigger in triggers:
                events.setdefault(trigger, []).extend(batch.get(event_class, ()))
        return [(trigger, recorded) for trigger, recorded in events.items() if recorded]

    def scope_steps(self, cursor: Cursor[Any], batch: dict[type, list[RecordedEvent]]) -> list[Any]:
        """The trigger calls the batch's events (by class) make: each a list of scopes, or a
        step (``projections.sets.run_together``) returning one."""
        return [trigger(self, cursor, recorded) for trigger, recorded in self.trigger_calls(batch)]

    def scopes(self, cursor: Cursor[Any], batch: dict[type, list[RecordedEvent]]) -> list[str]:
        """Every scope the batch's events (by class) may have changed, sorted."""
        found = run_together(cursor, self.scope_steps(cursor, batch))
        return sorted({scope for scopes in found for scope in scopes})

    def family(self) -> Any:
        """Rules of one family share one ``candidates`` query per batch: by default, the rules
        inheriting the same ``candidates`` method."""
        return type(self).candidates

    def candidates(self, cursor: Cursor[Any], scopes: Sequence[str]) -> Any:
        """One statement over every scope of the family's rules in the batch: the rows that
        may be violations (and only those); or a step reading them (sent with the other
        families')."""
        raise NotImplementedError

    def judge(self, cursor: Cursor[Any], candidates: Any, scopes: Sequence[str]) -> Any:
        """Every finding in ``scopes``, from the family's candidates (a list, or a step
        returning one when it reads)."""
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


class ScopedRule(Rule):
    """A rule whose ``candidates`` are the rows of each candidate scope (scope -> rows); it
    judges each of its scopes found there on its own."""

    def judge(
        self, cursor: Cursor[Any], candidates: dict[str, Any], scopes: Sequence[str]
    ) -> Step[list[Finding]]:
        judged = yield from together(
            [
                self.judge_scope(cursor, scope, candidates[scope])
                for scope in scopes
                if scope in candidates
            ]
        )
        return [finding for findings in judged for finding in findings]

    def judge_scope(self, cursor: Cursor[Any], scope: str, rows: Any) -> Any:
        """The scope's findings (a list, or a step returning one when it reads)."""
        raise NotImplementedError


def record_scopes(scopes: Sequence[str]) -> dict[str, list[Any]]:
    """Scopes that are a subject id ("subject") or one record of it ("subject|position"):
    ``{"subjects": [...], "positions": [...], "every_subject": [...]}``, the parameters of a
    candidates query (``every_subject``: the subjects of both kinds, each once)."""
    parts = [scope.partition("|") for scope in scopes]
    return {
        "subjects": [subject for subject, _, position in parts if not position],
        "positions": [int(position) for _, _, position in parts if position],
        "every_subject": list(dict.fromkeys(subject for subject, _, _ in parts)),
    }


@dataclass(frozen=True)
class Judged:
    """What one rule concluded about its scopes in one batch."""

    rule: Rule
    scopes: Sequence[str]
    findings: Sequence[Finding]


_FINDING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("alert_id", "uuid"),
    ("rule", "text"),
    ("key", "text"),
    ("severity", "text"),
    ("subject_kind", "text"),
    ("subject_id", "text"),
    ("contractor_id", "uuid"),
    ("county", "text"),
    ("reason", "text"),
    ("evidence", "text"),  # '{1,2,3}': arrays of different lengths travel as text
)


class AlertWriter:
    """Makes the alerts of the judged rules and scopes agree with their findings: one
    statement raises (or refreshes) every finding of the batch, one clears what is no longer
    found (looked for only under the rules that had open alerts when the batch began: most
    rules, most of the time, have none, and their scopes need no clearing)."""

    @staticmethod
    def open_rules(rules: Sequence[str]) -> Step[set[str]]:
        """Which of ``rules`` have open alerts (read with the batch's facts)."""
        rows = yield Read(
            "SELECT r FROM unnest(%b::text[]) AS r"
            " WHERE EXISTS (SELECT 1 FROM alerts WHERE rule = r AND status = 'open')",
            (list(rules),),
        )
        return {row[0] for row in rows}

    def sync(self, cursor: Cursor[Any], judged: Sequence[Judged], open_rules: set[str]) -> None:
        raised: list[tuple[Any, ...]] = []
        pairs: list[tuple[str, str]] = []
        for item in judged:
            rule = item.rule
            scopes = set(item.scopes)
            keys: set[str] = set()
            for finding in item.findings:
                if not in_scopes(finding.key, scopes):
                    raise ValueError(
                        f"{rule.name}: finding {finding.key!r} lies outside its scopes"
                    )
                if finding.key in keys:
                    raise ValueError(f"{rule.name}: two findings with key {finding.key!r}")
                if not finding.evidence:
                    raise ValueError(f"{rule.name}: finding {finding.key!r} cites no event")
                keys.add(finding.key)
                raised.append(
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
                        "{" + ",".join(map(str, finding.evidence)) + "}",
                    )
                )
            if rule.name in open_rules:
                pairs.extend((rule.name, scope) for scope in item.scopes)
        if raised:
            self.raise_alerts(cursor, raised)
        if pairs:
            # key COLLATE "C": '|' < '}' bounds the keys inside a scope.
            cursor.execute(
                "UPDATE alerts a SET status = 'cleared'"
                " FROM unnest(%b::text[], %b::text[]) AS s(rule, scope)"
                " WHERE a.rule = s.rule AND a.status = 'open'"
                ' AND a.key >= s.scope COLLATE "C" AND a.key < (s.scope || \'}\') COLLATE "C"'
                ' AND (a.key = s.scope COLLATE "C" OR a.key > (s.scope || \'|\') COLLATE "C")'
                " AND NOT (a.alert_id = ANY(%b::uuid[]))",
                ([p[0] for p in pairs], [p[1] for p in pairs], [row[0] for row in raised]),
            )

    @staticmethod
    def raise_alerts(cursor: Cursor[Any], rows: list[tuple[Any, ...]]) -> None:
        """Insert the alerts, or refresh those whose anything changed (reopening them)."""
        cursor.execute(
            # The alert's review row (unreviewed until an investigation cites it) is added
            # with the alert; reviews.py keeps it.
            f"WITH f AS (SELECT * FROM {unnest(_FINDING_COLUMNS, 'f')}),"
            " raised AS (INSERT INTO alerts (alert_id, rule, key, severity, subject_kind,"
            " subject_id, contractor_id, county, reason, evidence, first_seen, last_seen, status)"
            " SELECT f.alert_id, f.rule, f.key, f.severity, f.subject_kind, f.subject_id,"
            " f.contractor_id, f.county, f.reason, f.evidence::bigint[], t.first, t.last, 'open'"
            " FROM f CROSS JOIN LATERAL (SELECT min(at) AS first, max(at) AS last FROM"
            " (SELECT at FROM rf_event_time WHERE position = ANY(f.evidence::bigint[])"
            " UNION ALL SELECT recorded_at FROM rf_record"
            " WHERE position = ANY(f.evidence::bigint[])) e) t"
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
            columns_of(rows, _FINDING_COLUMNS),
        )


class Engine:
    """Applies one batch: its facts first, then every rule it triggers, each touched scope
    judged once."""

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

    def apply_batch(
        self, cursor: Cursor[Any], events: Sequence[RecordedEvent], *also: Step[Any]
    ) -> None:
        """``also``: steps read with the facts the batch changes (a check of the batch)."""
        *_, open_rules = self.facts.apply_batch(
            cursor, events, *also, self.writer.open_rules([rule.name for rule in self.rules])
        )
        self.judge_batch(cursor, events, open_rules)

    def apply_facts(
        self, cursor: Cursor[Any], events: Sequence[RecordedEvent], *also: Step[Any]
    ) -> None:
        """The batch's facts alone (a rebuild's first stage; ``judge_batch`` follows)."""
        self.facts.apply_batch(cursor, events, *also)

    def judge_batch(
        self,
        cursor: Cursor[Any],
        events: Sequence[RecordedEvent],
        open_rules: set[str] | None = None,
    ) -> None:
        """Every rule the batch's events trigger, each touched scope judged once, from the
        facts as stored: the batch's own (``apply_batch``), or, in a rebuild's second stage,
        the facts of the batch and maybe of later events (a scope judged with facts newer
        than the batch is judged again with the batch that brought them, whose events
        trigger it, as in a larger batch). ``open_rules``: the rules with open alerts when
        the batch began (read here when not given)."""
        if open_rules is None:
            (open_rules,) = run_together(
                cursor, [self.writer.open_rules([rule.name for rule in self.rules])]
            )
        by_class: dict[type, list[RecordedEvent]] = {}
        for recorded in events:
            by_class.setdefault(type(recorded.event), []).append(recorded)
        # Every rule's trigger reads, then every family's candidates, then every judgement's
        # reads: each round sent together (one round trip in the runner's pipeline).
        # A shared trigger (``triggered_by(shared=True)``) is called once for every rule that
        # inherits it: the same function given the same events.
        steps: list[Any] = []
        called: dict[Any, int] = {}
        calls: list[tuple[Rule, int]] = []
        for rule in self.rules:
            for trigger, triggering in rule.trigger_calls(by_class):
                key = trigger if getattr(trigger, "_shared", False) else (rule.name, trigger)
                if key not in called:
                    called[key] = len(steps)
                    steps.append(trigger(rule, cursor, triggering))
                calls.append((rule, called[key]))
        results = run_together(cursor, steps)
        found: dict[str, set[str]] = {rule.name: set() for rule in self.rules}
        for rule, index in calls:
            found[rule.name].update(results[index])
        scopes = {name: sorted(rule_scopes) for name, rule_scopes in found.items()}
        families: dict[Any, list[Rule]] = {}
        for rule in self.rules:
            if scopes[rule.name]:
                families.setdefault(rule.family(), []).append(rule)
        candidates = run_together(
            cursor,
            [
                rules[0].candidates(
                    cursor, sorted({scope for rule in rules for scope in scopes[rule.name]})
                )
                for rules in families.values()
            ],
        )
        judging = [
            (rule, scopes[rule.name], found_candidates)
            for rules, found_candidates in zip(families.values(), candidates, strict=True)
            for rule in rules
        ]
        findings = run_together(
            cursor, [rule.judge(cursor, found, mine) for rule, mine, found in judging]
        )
        judged = [
            Judged(rule, mine, rule_findings)
            for (rule, mine, _), rule_findings in zip(judging, findings, strict=True)
        ]
        self.writer.sync(cursor, judged, open_rules)
