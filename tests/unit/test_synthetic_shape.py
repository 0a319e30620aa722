"""The synthetic province's shape: shrunk for small runs, the register's whole when asked."""

from __future__ import annotations

from tools.synthetic.province import Geography, Shape


def _geography(counties: int, townships: int, villages: int) -> Geography:
    children: dict[str, list[str]] = {"44": [f"44{c:04d}" for c in range(counties)]}
    for county in children["44"]:
        children[county] = [f"{county}{t:03d}" for t in range(townships)]
        for township in children[county]:
            children[township] = [f"{township}{v:03d}" for v in range(villages)]
    return Geography(children)


def test_a_small_run_shrinks_the_province_so_each_village_holds_a_few_households() -> None:
    shape = Shape.for_households(500, _geography(counties=40, townships=20, villages=30))
    assert len(shape.counties) == 2
    assert all(len(ts) <= 13 for ts in shape.townships.values())
    assert all(len(vs) <= 16 for vs in shape.villages.values())


def test_the_whole_province_is_every_county_township_and_village_however_few_households() -> None:
    geography = _geography(counties=40, townships=20, villages=30)
    shape = Shape.for_households(500, geography, whole=True)
    assert shape.counties == geography.counties
    assert sum(len(ts) for ts in shape.townships.values()) == 40 * 20
    assert sum(len(vs) for vs in shape.villages.values()) == 40 * 20 * 30
