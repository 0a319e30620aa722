"""Names of divisions (行政区划) for the console: the one place that turns a code into a name.

The division register (a read model ``read_models.divisions(code, name, ...)``) is being built
elsewhere; until its table exists the console shows the codes themselves. Switching to another
source of names means changing this function only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import Cursor

from projections.divisions import division_names as register_names

#: Length of a division code at each level, province to village.
LEVEL_WIDTHS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}
LEVELS = tuple(LEVEL_WIDTHS)


def next_level(level: str) -> str | None:
    """The level a drill-down goes to from ``level`` (None below villages)."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def level_of(code: str) -> str:
    return next((name for name, width in LEVEL_WIDTHS.items() if width == len(code)), "village")


def division_names(cursor: Cursor[Any], codes: Iterable[str]) -> dict[str, str]:
    """code → name for the codes the division register knows (its current name, or the last
    one of a division merged or abolished since); a code it does not know is absent (the
    caller shows the code)."""
    return register_names(cursor, codes)
