"""Division list files: the shipped register file and the statistics bureau's list.

Two formats, told apart by the header line:

- the register file (``infra/data/divisions-44-nbs2023.csv.gz``): ``#`` comment lines (source,
  ``effective_from: YYYY-MM-DD``), then ``code,name,level,parent`` with unpadded codes;
- the statistics bureau's published list (统计用区划代码): lines of ``code,name`` (comma or tab;
  a header line ``code,name`` or ``统计用区划代码,名称`` is optional) with 12-digit codes padded
  with zeros (``440000000000`` 广东省, ``441900003000`` 东城街道), or unpadded codes.

Either may be gzipped (``.gz``). Every line is checked: a malformed code, a level or parent
that contradicts the code, or a parent missing from the list refuses the whole file, naming
the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from domain.division import ListedDivision, require_division_name
from domain.errors import DomainError
from domain.identifiers import parse_division_code

DEFAULT_DIVISIONS_FILE = Path(__file__).resolve().parent / "data" / "divisions-44-nbs2023.csv.gz"
#: A list that does not say when it takes effect: the register's start of time.
DEFAULT_EFFECTIVE_FROM = dt.date(2000, 1, 1)
LEVELS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}
# Trailing zero segments of a padded 12-digit code, innermost first (village, township, county,
# prefecture): what padding adds to a shorter code.
_PADDING = ((9, 12), (6, 9), (4, 6), (2, 4))


class DivisionFileError(ValueError):
    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.line = line


@dataclass(frozen=True)
class DivisionList:
    divisions: tuple[ListedDivision, ...]
    effective_from: dt.date
    source: str


def unpad(code: str) -> str:
    """``440100000000`` → ``4401``; ``441900003000`` → ``441900003``; unpadded codes as they
    are. A county segment ``00`` under a remaining township is kept (东莞, 中山)."""
    if len(code) != 12:
        return code
    for start, end in _PADDING:
        if set(code[start:end]) == {"0"} and len(code) == end:
            code = code[:start]
    return code


def read_division_file(path: Path) -> DivisionList:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    effective_from = DEFAULT_EFFECTIVE_FROM
    source: list[str] = []
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if comment.startswith("effective_from:"):
                value = comment.split(":", 1)[1].strip()
                try:
                    effective_from = dt.date.fromisoformat(value)
                except ValueError:
                    raise DivisionFileError(path, number, f"effective_from {value!r}") from None
            elif comment.startswith("source:"):
                source.append(comment.split(":", 1)[1].strip())
            continue
        lines.append((number, line))
    if not lines:
        raise DivisionFileError(path, 0, "no divisions listed")
    delimiter = "\t" if "\t" in lines[0][1] else ","
    rows = [
        (number, row)
        for (number, _), row in zip(
            lines, csv.reader((line for _, line in lines), delimiter=delimiter), strict=True
        )
    ]
    header = [cell.strip().lower() for cell in rows[0][1]]
    with_levels = header[:4] == ["code", "name", "level", "parent"]
    if with_levels or not (header and header[0].isdigit()):
        rows = rows[1:]
    divisions: dict[str, ListedDivision] = {}
    for number, row in rows:
        if len(row) < 2:
            raise DivisionFileError(path, number, "expected code and name")
        try:
            code = parse_division_code(unpad(row[0].strip()), field="code").code
            name = require_division_name(row[1])
        except DomainError as error:
            raise DivisionFileError(path, number, error.message) from None
        item = ListedDivision(code, name)
        if with_levels:
            level, parent = row[2].strip(), row[3].strip() or None
            if LEVELS.get(level) != len(code) or parent != item.parent:
                raise DivisionFileError(
                    path, number, f"{code}: level {level!r} or parent {parent!r} contradicts it"
                )
        if code in divisions and divisions[code].name != name:
            raise DivisionFileError(path, number, f"{code} is listed twice")
        divisions[code] = item
    for item in list(divisions.values()):
        parent = item.parent
        if parent is not None and parent.endswith("00") and len(parent) == 6:
            # The bureau lists 东莞 and 中山 without a county level; the register keeps one
            # (4419 → 441900), named as the city, as the county-level parent of their townships.
            city = divisions.get(parent[:4])
            if parent not in divisions and city is not None:
                divisions[parent] = ListedDivision(parent, city.name)
                continue
        # a province's list may leave out the province itself; a parent listed must be there
        if parent is not None and len(parent) > 2 and parent not in divisions:
            raise DivisionFileError(path, 0, f"{item.code}: its parent {parent} is not listed")
    return DivisionList(
        tuple(sorted(divisions.values(), key=lambda d: (len(d.code), d.code))),
        effective_from,
        " ".join(source) or path.name,
    )


def write_division_file(path: Path, divisions: list[tuple[str, str]], comments: list[str]) -> None:
    """Write a register file (used by the test fixtures' generator)."""
    out = io.StringIO()
    for comment in comments:
        out.write(f"# {comment}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("code", "name", "level", "parent"))
    names = {length: level for level, length in LEVELS.items()}
    for code, name in sorted(divisions, key=lambda d: (len(d[0]), d[0])):
        writer.writerow((code, name, names[len(code)], ListedDivision(code, name).parent or ""))
    data = out.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
