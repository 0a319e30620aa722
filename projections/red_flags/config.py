"""Thresholds of the red-flag rules: configuration, read once when the projection is built.

The projection is constructed with no arguments (``projection_class(name)()``), so it reads
``policy/red-flags.json`` at construction; a key the file leaves out takes the default below,
and a key the file misspells is refused (a typo must not silently fall back to a default).

Changing a threshold changes what the rules conclude from the same events, so it takes a
rebuild (``relief projections rebuild red_flags``): a generation records the fingerprint of the
configuration it was built with (table ``rf_config``), and a runner started with a different
configuration stops on its first event with an error saying so, instead of mixing two sets of
thresholds in one generation.

Amounts, fractions and the significance level are read as decimals (never binary floats), so
the same file gives the same decisions on every machine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parents[2] / "policy" / "red-flags.json"


class ConfigError(ValueError):
    """The red-flag configuration is malformed; names the offending key."""


@dataclass(frozen=True)
class TenderLimit:
    """A purchaser's procurement or tender limit (限额标准): an award at or above it must go
    to tender. ``division`` is the purchaser's code or a prefix of it (a prefecture's limit
    covers its counties unless a county has its own); ``source`` says where the figure comes
    from (the published notice), and every reason citing the limit states it."""

    division: str
    limit: Decimal
    source: str


@dataclass(frozen=True)
class RedFlagsConfig:
    # Concurrent cases (people.py) -----------------------------------------------------------
    #: Two cases active at once for at most this many days in total raise nothing (a move or
    #: a change of programme: the new case approved, the old closed within the grace).
    overlap_grace_days: int = 31
    #: Recurring programmes: one person should not be in two of them at once.
    recurring_programmes: tuple[str, ...] = ("dibao", "tekun")
    # Impossible day (workload.py) -----------------------------------------------------------
    #: Two records of one staff member overlapping by at most this much are not an overlap.
    overlap_tolerance_minutes: int = 0
    #: More service hours than this recorded by one staff member in one day.
    max_service_hours_per_day: Decimal = Decimal(24)
    #: More home visits than this by one visitor in one day.
    max_home_visits_per_day: int = 8
    # Household over time (household.py) ------------------------------------------------------
    #: Months beginning more than this many days after a household lost a member may not be
    #: paid at the old amount without a review (time to notice and review the change).
    household_review_grace_days: int = 31
    # Approval rate (approval_rate.py) -------------------------------------------------------
    #: Decided cases investigated by the contractor, and by everyone else in the county,
    #: needed before the test is run.
    approval_min_cases: int = 20
    approval_min_others: int = 20
    #: One-sided two-proportion z at or above which the contractor's rate is "far above".
    approval_z: Decimal = Decimal("3.09")
    #: ... and the rates must differ by at least this much (a practical, not only statistical,
    #: difference).
    approval_min_difference: Decimal = Decimal("0.15")
    # Income bunching (bunching.py) ----------------------------------------------------------
    #: Width of the bands just under and just above the line, as a fraction of the line.
    bunching_band: Decimal = Decimal("0.10")
    #: Means tests in the two bands together needed before the test is run.
    bunching_min_sample: int = 20
    #: One-sided exact binomial test: flag when P(at least this many under | fair split) is
    #: at most alpha.
    bunching_alpha: Decimal = Decimal("0.001")
    # Contract money (money.py) --------------------------------------------------------------
    #: An evaluation scoring below this is poor.
    poor_evaluation_below: Decimal = Decimal(60)
    #: A value raised within this many days after a poor evaluation is flagged.
    raise_within_days: int = 365
    #: The threshold contracts are split to stay under (e.g. the local procurement limit or
    #: tender threshold, 限额标准): set it to the purchaser's own figure.
    split_threshold: Decimal = Decimal(1_000_000)
    #: "Just under": award values in [threshold × (1 − band), threshold).
    split_band: Decimal = Decimal("0.10")
    #: At least this many such awards to one contractor by one purchaser ...
    split_min_contracts: int = 3
    #: ... awarded within this many days of each other.
    split_window_days: int = 90
    #: Purchasers' own tender limits (the most specific prefix applies); a purchaser none
    #: covers is judged against ``split_threshold``.
    tender_limits: tuple[TenderLimit, ...] = ()
    # Evidence ---------------------------------------------------------------------------------
    #: Rules that count many events (visits in a day, approvals, means tests) cite at most
    #: this many, the earliest; their reason states the full count.
    max_evidence: int = 200
    name: str = "defaults"

    # Lookups --------------------------------------------------------------------------------

    def limit_for(self, purchaser: str) -> tuple[Decimal, str]:
        """The tender limit a purchaser's awards are split under, and its source."""
        covering = [t for t in self.tender_limits if purchaser.startswith(t.division)]
        if not covering:
            return self.split_threshold, "split_threshold of the red-flag configuration"
        chosen = max(covering, key=lambda t: len(t.division))
        return chosen.limit, chosen.source

    # Serialisation --------------------------------------------------------------------------

    def as_document(self) -> dict[str, Any]:
        """A canonical JSON-able form: what the fingerprint is taken over."""
        document: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tender_limits":
                value = [
                    {"division": t.division, "limit": str(t.limit), "source": t.source}
                    for t in value
                ]
            elif isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            document[f.name] = value
        return document

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.as_document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_INTEGERS = {
    "overlap_grace_days": (0, 3650),
    "overlap_tolerance_minutes": (0, 24 * 60),
    "household_review_grace_days": (0, 3650),
    "max_home_visits_per_day": (1, 1000),
    "approval_min_cases": (1, 1_000_000),
    "approval_min_others": (1, 1_000_000),
    "bunching_min_sample": (1, 1_000_000),
    "raise_within_days": (0, 36500),
    "split_min_contracts": (2, 1000),
    "split_window_days": (0, 3650),
    "max_evidence": (10, 100_000),
}
_DECIMALS = {
    "max_service_hours_per_day": (Decimal(0), Decimal(24)),
    "approval_z": (Decimal(0), Decimal(10)),
    "approval_min_difference": (Decimal(0), Decimal(1)),
    "bunching_band": (Decimal("0.001"), Decimal("0.5")),
    "bunching_alpha": (Decimal("0.000000001"), Decimal("0.5")),
    "poor_evaluation_below": (Decimal(0), Decimal(100)),
    "split_threshold": (Decimal(1), Decimal(1_000_000_000)),
    "split_band": (Decimal("0.001"), Decimal(1)),
}


def _integer(document: dict[str, Any], key: str) -> int:
    value = document[key]
    low, high = _INTEGERS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _decimal(value: Any, key: str, bounds: tuple[Decimal, Decimal] | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, str, Decimal)):
        # A float has already lost digits: ask for a string or read the file with
        # parse_float=Decimal, as load_config does.
        raise ConfigError(f"{key} must be a number written exactly (or a string), got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{key} must be finite")
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        raise ConfigError(f"{key} must lie from {bounds[0]} to {bounds[1]}, got {number}")
    return number


def _tender_limits(value: Any) -> tuple[TenderLimit, ...]:
    if not isinstance(value, list):
        raise ConfigError("tender_limits must be a list")
    limits = []
    for n, item in enumerate(value):
        where = f"tender_limits[{n}]"
        if not isinstance(item, dict) or set(item) - {"division", "limit", "source", "note"}:
            raise ConfigError(f"{where} takes division, limit, source (and note)")
        division, source = item.get("division"), item.get("source")
        if not (isinstance(division, str) and division.isdigit() and len(division) in (2, 4, 6)):
            raise ConfigError(f"{where}.division must be a 2, 4 or 6-digit division code")
        if not isinstance(source, str) or not source.strip():
            raise ConfigError(f"{where}.source must say where the limit comes from")
        limit = _decimal(item.get("limit"), f"{where}.limit", _DECIMALS["split_threshold"])
        limits.append(TenderLimit(division, limit, source.strip()))
    if len({t.division for t in limits}) != len(limits):
        raise ConfigError("tender_limits: two limits for one division")
    return tuple(sorted(limits, key=lambda t: t.division))


def parse_config(document: Any) -> RedFlagsConfig:
    """Validate a configuration document; missing keys take the defaults."""
    if not isinstance(document, dict):
        raise ConfigError("the red-flag configuration is a JSON object")
    if "lines" in document:
        # The local standards were read from here once; they are events now, with provenance.
        raise ConfigError(
            "lines: the local minimum-living standards are no longer configuration; enter them "
            "with POST /standards or relief standards load FILE (README: Minimum-living "
            "standards)"
        )
    known = {f.name for f in fields(RedFlagsConfig)}
    unknown = sorted(set(document) - known - {"note", "$comment"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key in _INTEGERS:
        if key in document:
            values[key] = _integer(document, key)
    for key, bounds in _DECIMALS.items():
        if key in document:
            values[key] = _decimal(document[key], key, bounds)
    if "recurring_programmes" in document:
        programmes = document["recurring_programmes"]
        if not isinstance(programmes, list) or not set(programmes) <= {"dibao", "tekun"}:
            raise ConfigError("recurring_programmes is a list drawn from dibao and tekun")
        values["recurring_programmes"] = tuple(sorted(set(programmes)))
    if "tender_limits" in document:
        values["tender_limits"] = _tender_limits(document["tender_limits"])
    if "name" in document:
        if not isinstance(document["name"], str) or not document["name"].strip():
            raise ConfigError("name must be a non-empty string")
        values["name"] = document["name"].strip()
    return RedFlagsConfig(**values)


def load_config(path: Path = DEFAULT_CONFIG_FILE) -> RedFlagsConfig:
    """The configuration in ``path``; the defaults when there is no such file."""
    if not path.exists():
        return RedFlagsConfig()
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not JSON: {error}") from None
    try:
        return parse_config(document)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
