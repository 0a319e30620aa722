"""Dashboards over HTTP: every list paged in a stable order with its total, answers tagged
with the positions of the projections they read (If-None-Match answers 304), and staffing as
it stood at a past moment."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.commands.purchasing import AssignStaff, HireStaff, RemoveStaff
from infra.divisions_file import read_division_file
from infra.projection_runner import rebuild
from infra.runtime import Runtime
from projections.caseload import CaseloadProjection
from projections.registry import ALL_PROJECTIONS
from tests.conftest import TEST_DIVISIONS
from tests.e2e.http import actor, count_hand_offs, ok, refused
from tests.factories import BY_OFFICER, approver, hire_staff_for, token
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e


def catch_up(runtime: Runtime) -> None:
    for projection in ALL_PROJECTIONS:
        runtime.projection_runner(projection).catch_up()


def every_page(client: TestClient, path: str, params: dict[str, Any], limit: int) -> list[Any]:
    """The rows of every page, checking each page's total and bounds."""
    rows: list[Any] = []
    offset, total = 0, None
    while True:
        page = ok(client.get(path, params={**params, "limit": limit, "offset": offset}))
        assert (page["limit"], page["offset"]) == (limit, offset)
        assert total is None or page["total"] == total
        total = page["total"]
        assert len(page["items"]) == min(limit, max(total - offset, 0))
        rows += page["items"]
        if offset >= total:
            return rows
        offset += limit


@pytest.fixture()
def province(runtime: Runtime) -> Runtime:
    """Applications in three counties and two villages, two approved; staff in one county."""
    for county, village in (("440103", "001"), ("440103", "002"), ("440104", "001")):
        approve(runtime, application(runtime, county, village_=village))
    application(runtime, "440105", "tekun")
    staff = runtime.services.purchasing.hire_staff(
        HireStaff(name="Li", kind="handling_staff", government_unit="440103", provenance=BY_OFFICER)
    )
    runtime.services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440103", provenance=BY_OFFICER)
    )
    runtime.staff_id = staff.id  # type: ignore[attr-defined]
    catch_up(runtime)
    return runtime


def test_lists_are_paged_in_a_stable_order_with_their_total(
    client: TestClient, province: Runtime
) -> None:
    for level in ("province", "prefecture", "county", "township", "village"):
        whole = ok(client.get("/caseload", params={"level": level, "limit": 1000}))
        assert every_page(client, "/caseload", {"level": level}, 2) == whole["items"]
        keys = [(r["division"], r["programme"], r["status"]) for r in whole["items"]]
        assert keys == sorted(keys) and whole["total"] == len(keys)
    county = ok(client.get("/caseload", params={"level": "county", "status": "approved"}))
    assert [(r["division"], r["cases"], r["households"]) for r in county["items"]] == [
        ("440103", 2, 2),
        ("440104", 1, 1),
    ]
    villages = ok(client.get("/caseload", params={"level": "village", "division": "440103"}))
    assert {r["division"] for r in villages["items"]} == {"440103001001", "440103001002"}
    beyond = ok(client.get("/caseload", params={"level": "county", "offset": 50}))
    assert beyond["items"] == [] and beyond["total"] == county["total"] + 1  # + tekun received

    staffing = ok(client.get("/staffing", params={"limit": 1000}))
    assert every_page(client, "/staffing", {}, 1) == staffing["items"]
    codes = [r["division"] for r in staffing["items"]]
    assert codes == sorted(codes) and staffing["total"] == len(codes)
    assert {"440103", "440104", "440103001", "440104001"} <= set(codes)
    # (one township: the register lists every village of the province)
    within = {"division": "440103001"}
    villages = ok(client.get("/staffing/villages", params={**within, "limit": 1000}))
    assert every_page(client, "/staffing/villages", within, 3) == villages["items"]
    assert villages["total"] == len(villages["items"]) > 2

    for path, params, field in (
        ("/caseload", {"limit": 0}, "limit"),
        ("/caseload", {"limit": 1001}, "limit"),
        ("/caseload", {"offset": -1}, "offset"),
        ("/caseload", {"level": "street"}, "level"),
        ("/staffing", {"limit": "many"}, "limit"),
        ("/staffing/villages", {"offset": -5}, "offset"),
        ("/caseload/by-staff", {"limit": 0}, "limit"),
    ):
        problem = refused(client.get(path, params=params), 422, "invalid-request")
        assert problem["field"] == field, problem


def test_an_etag_names_the_projections_positions(client: TestClient, province: Runtime) -> None:
    runtime = province
    for path, params in (
        ("/caseload", {"level": "county"}),
        ("/caseload/by-staff", {}),
        ("/caseload/cross-region", {}),
        ("/staffing", {"level": "county"}),
        ("/staffing/summary", {}),
        ("/staffing/villages", {"status": "under_staffed"}),
        ("/staffing/divisions/440103", {"months": 2}),
        ("/alerts", {}),
    ):
        first = client.get(path, params=params)
        tag = first.headers["ETag"]
        assert first.status_code == 200 and tag.startswith('"'), path
        again = client.get(path, params=params, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["ETag"] == tag
        # A list of tags, weak comparison, and '*' all match; another tag does not.
        for header in (f'"x", W/{tag}', "*"):
            assert (
                client.get(path, params=params, headers={"If-None-Match": header}).status_code
                == 304
            )
        assert client.get(path, params=params, headers={"If-None-Match": '"x"'}).status_code == 200
    # Another question, another caller's scope: another tag.
    county = client.get("/caseload", params={"level": "county"})
    township = client.get("/caseload", params={"level": "township"})
    assert county.headers["ETag"] != township.headers["ETag"]
    scoped = client.get(
        "/caseload",
        params={"level": "county"},
        headers=actor("auditor", "440103", "a", scope="440103"),
    )
    assert scoped.headers["ETag"] != county.headers["ETag"]
    tag = county.headers["ETag"]
    # A command recorded but not yet applied changes no answer: the tag stands.
    approve(runtime, application(runtime, "440104", village_="003"))
    assert (
        client.get(
            "/caseload", params={"level": "county"}, headers={"If-None-Match": tag}
        ).status_code
        == 304
    )
    # Applied, the answer changes and so does its tag.
    catch_up(runtime)
    fresh = client.get("/caseload", params={"level": "county"}, headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != tag
    approved = {
        r["division"]: r["cases"] for r in fresh.json()["items"] if r["status"] == "approved"
    }
    assert approved == {"440103": 2, "440104": 2}


def test_a_tag_moves_only_with_events_its_projections_read(
    client: TestClient, province: Runtime
) -> None:
    runtime = province
    caseload = client.get("/caseload", params={"level": "county"})
    staffing = client.get("/staffing", params={"level": "county"})
    # A staff member hired and assigned: the staffing projection reads it, caseload does not.
    staff = runtime.services.purchasing.hire_staff(
        HireStaff(name="Wu", kind="handling_staff", government_unit="440104", provenance=BY_OFFICER)
    )
    runtime.services.purchasing.assign_staff(
        AssignStaff(staff_id=staff.id, division="440104", provenance=BY_OFFICER)
    )
    catch_up(runtime)
    again = client.get("/caseload", params={"level": "county"})
    assert again.headers["ETag"] == caseload.headers["ETag"]
    assert again.content == caseload.content
    moved = client.get("/staffing", params={"level": "county"})
    assert moved.headers["ETag"] != staffing.headers["ETag"]
    county = {r["division"]: r["government_staff"] for r in moved.json()["items"]}
    was = {r["division"]: r["government_staff"] for r in staffing.json()["items"]}
    assert county["440104"] == was["440104"] + 1


def test_an_answer_about_one_county_keeps_its_tag_while_other_counties_change(
    client: TestClient, province: Runtime
) -> None:
    """A county's caseload and staffing answers follow the writes of that county's rows
    (``Projection.scoped``): a case approved in another county leaves their tags and kept
    answers as they were, and moves the province's, the prefecture's and that county's."""
    runtime = province
    asked = {
        "caseload": ("/caseload", {"level": "township"}),
        "staffing": ("/staffing", {}),
        "summary": ("/staffing/summary", {}),
        "villages": ("/staffing/villages", {}),
    }

    def tags(division: str | None) -> dict[str, tuple[str, bytes]]:
        got = {}
        for name, (path, params) in asked.items():
            answer = client.get(
                path, params={**params, **({"division": division} if division else {})}
            )
            assert answer.status_code == 200, answer.text
            got[name] = (answer.headers["ETag"], answer.content)
        return got

    before = {division: tags(division) for division in ("440103", "440104", "4401", None)}
    approve(runtime, application(runtime, "440104", village_="002"))
    catch_up(runtime)
    after = {division: tags(division) for division in ("440103", "440104", "4401", None)}
    assert after["440103"] == before["440103"]
    for division in ("440104", "4401", None):
        for name in asked:
            assert after[division][name][0] != before[division][name][0], (division, name)
    assert after["440104"]["caseload"][1] != before["440104"]["caseload"][1]
    approve(runtime, application(runtime, "440103", village_="003"))
    catch_up(runtime)
    moved = tags("440103")
    for name in asked:
        assert moved[name][0] != after["440103"][name][0], name
    assert moved["caseload"][1] != after["440103"]["caseload"][1]


def test_a_rebuild_gives_new_tags_and_the_same_answers(
    client: TestClient, province: Runtime
) -> None:
    """The API remembers which generation each projection serves from: a rebuild's switch is
    seen on the next request (another tag, the same rows), never a kept answer of the old one."""
    runtime = province
    before = client.get("/caseload", params={"level": "county"})
    tag = before.headers["ETag"]
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection)
    after = client.get("/caseload", params={"level": "county"}, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["ETag"] != tag
    assert after.json()["items"] == before.json()["items"]
    rebuild(runtime.pool, runtime.ledger.recorder, runtime.ledger.mapper, CaseloadProjection)
    again = client.get("/caseload", params={"level": "county"})
    assert again.headers["ETag"] not in (tag, after.headers["ETag"])
    assert again.json()["items"] == before.json()["items"]


def test_answers_kept_under_their_tag_are_the_answers(
    client: TestClient, province: Runtime
) -> None:
    runtime = province
    cache = client.app.state.answer_cache  # type: ignore[attr-defined]
    assert cache is not None
    first = client.get("/staffing/villages", params={"status": "under_staffed"})
    hits = cache.hits
    kept = client.get("/staffing/villages", params={"status": "under_staffed"})
    assert cache.hits == hits + 1
    assert (kept.content, kept.headers["ETag"]) == (first.content, first.headers["ETag"])
    afresh = client.get(
        "/staffing/villages",
        params={"status": "under_staffed"},
        headers={"Cache-Control": "no-cache"},
    )
    assert cache.hits == hits + 1  # computed again: the same answer at a later moment
    assert {**afresh.json(), "at": None} == {**first.json(), "at": None}
    # Another caller's scope is another answer, never the one kept for the first.
    scoped = client.get(
        "/staffing/villages",
        params={"status": "under_staffed"},
        headers=actor("auditor", "440103", "a", scope="440103"),
    )
    assert all(v["division"].startswith("440103") for v in scoped.json()["items"])
    assert scoped.json()["total"] < first.json()["total"]
    # A coordinator assigned and applied: the kept answer is not served again.
    coordinator = runtime.services.purchasing.hire_staff(
        HireStaff(
            name="Zhao", kind="village_coordinator", government_unit="440103", provenance=BY_OFFICER
        )
    )
    village = first.json()["items"][0]["division"]
    runtime.services.purchasing.assign_staff(
        AssignStaff(staff_id=coordinator.id, division=village, provenance=BY_OFFICER)
    )
    catch_up(runtime)
    fresh = client.get("/staffing/villages", params={"status": "under_staffed"})
    assert fresh.headers["ETag"] != first.headers["ETag"]
    assert fresh.json()["total"] == first.json()["total"] - 1
    assert village not in {v["division"] for v in fresh.json()["items"]}
    metrics = client.get("/metrics").text
    assert "relief_answer_cache_hits_total" in metrics


def test_a_kept_answer_and_a_304_are_sent_without_a_worker_thread(
    client: TestClient, province: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marks an answer's tag is made of are read from the event loop (``ProjectionMarks.
    read_on_loop``): a kept answer or a 304 hands off to no worker thread; a computed one to
    one (its query)."""
    path, params = "/staffing/villages", {"status": "under_staffed"}
    tag = client.get(path, params=params).headers["ETag"]
    hand_offs = count_hand_offs(monkeypatch)
    assert client.get(path, params=params).headers["ETag"] == tag  # kept
    assert client.get(path, params=params, headers={"If-None-Match": tag}).status_code == 304
    assert hand_offs == []
    afresh = client.get(path, params=params, headers={"Cache-Control": "no-cache"})
    assert afresh.headers["ETag"] == tag and hand_offs


def test_staffing_at_a_past_moment_from_the_intervals(
    client: TestClient, province: Runtime
) -> None:
    runtime = province
    before = runtime.services.clock.now()
    approve(runtime, application(runtime, "440103", village_="004"))
    # Li and the county's approver (a staff record, as every decision-maker is) leave; the
    # officer who investigated stays.
    deciding = hire_staff_for(runtime.services, approver("440103")).actor.id
    for leaving in (runtime.staff_id, uuid.UUID(deciding)):  # type: ignore[attr-defined]
        runtime.services.purchasing.remove_staff(
            RemoveStaff(
                staff_id=leaving,
                on=runtime.services.clock.today(),
                reason="left",
                provenance=BY_OFFICER,
            )
        )
    catch_up(runtime)
    params = {"division": "440103", "level": "county"}
    now = ok(client.get("/staffing", params=params))["items"]
    then = ok(client.get("/staffing", params={**params, "at": before.isoformat()}))
    assert [(r["households"], r["government_staff"], r["shortfall"]) for r in now] == [(3, 1, 1)]
    assert [(r["households"], r["government_staff"], r["shortfall"]) for r in then["items"]] == [
        (2, 3, 0)
    ]
    assert then["total"] == 1 and then["at"] == before.isoformat()
    # At the present moment, the intervals and the kept rows say the same.
    moment = runtime.services.clock.now().isoformat()
    assert (
        ok(client.get("/staffing", params={"at": moment, "limit": 1000}))["items"]
        == ok(client.get("/staffing", params={"limit": 1000}))["items"]
    )
    summary_then = ok(client.get("/staffing/summary", params={"at": before.isoformat()}))
    summary_now = ok(client.get("/staffing/summary"))
    assert summary_now["county_shortfall"] == summary_then["county_shortfall"] + 1
    tag_then = client.get("/staffing", params={**params, "at": before.isoformat()}).headers["ETag"]
    assert tag_then != client.get("/staffing", params=params).headers["ETag"]
    refused(client.get("/staffing", params={"at": "yesterday"}), 422, "invalid-request")


def test_an_answer_at_a_past_moment_keeps_its_tag_while_later_events_pass(
    client: TestClient, province: Runtime
) -> None:
    """Staffing as it stood at a moment is built from what was recorded by then: its tag (and
    the answer kept under it) stays while batches of events recorded later pass, today's
    included (a minute before is enough), and moves with a batch holding events recorded by
    that moment."""
    runtime = province
    cache = client.app.state.answer_cache  # type: ignore[attr-defined]
    now = runtime.services.clock.now()
    yesterday = (now - dt.timedelta(days=1)).isoformat()
    a_minute_ago = (now - dt.timedelta(seconds=61)).isoformat()
    path, params = "/staffing", {"level": "county"}
    past = client.get(path, params={**params, "at": yesterday})
    earlier = client.get(path, params={**params, "at": a_minute_ago})
    approve(runtime, application(runtime, "440104", village_="002"))
    after_it = (runtime.services.clock.now() + dt.timedelta(microseconds=1)).isoformat()
    before_applied = client.get(path, params={**params, "at": after_it})
    catch_up(runtime)
    hits = cache.hits
    for at, first in ((yesterday, past), (a_minute_ago, earlier)):
        again = client.get(path, params={**params, "at": at})
        assert (again.headers["ETag"], again.content) == (first.headers["ETag"], first.content)
    assert cache.hits == hits + 2
    moved = client.get(path, params={**params, "at": after_it})
    assert moved.headers["ETag"] != before_applied.headers["ETag"]
    households = {r["division"]: r["households"] for r in moved.json()["items"]}
    assert households["440104"] == 2
    assert ok(client.get(path, params=params))["items"] == moved.json()["items"]


def test_a_renamed_division_moves_the_tags_of_answers_naming_it(
    client: TestClient, province: Runtime, tmp_path: Path
) -> None:
    """Caseload and staffing rows carry their divisions' names: a rename is a new answer, and
    a division abolished since keeps the last name it had."""
    runtime = province
    caseload = client.get("/caseload", params={"level": "county"})
    staffing = client.get("/staffing", params={"level": "county"})
    listed = read_division_file(TEST_DIVISIONS)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(
        f"# effective_from: {runtime.services.clock.today().isoformat()}\ncode,name\n"
        + "\n".join(
            f"{d.code},{'新名区' if d.code == '440103' else d.name}"
            for d in listed.divisions
            if not d.code.startswith("440104")  # abolished
        )
    )
    report = runtime.load_divisions(read_division_file(renamed), actor="test")
    assert report.renamed == 1 and report.abolished > 0
    catch_up(runtime)
    for before, path in ((caseload, "/caseload"), (staffing, "/staffing")):
        after = client.get(path, params={"level": "county"})
        assert after.headers["ETag"] != before.headers["ETag"]
        names = {r["division"]: r["name"] for r in after.json()["items"]}
        assert names["440103"] == "新名区"
        assert names["440104"] == "测试区440104"


def test_an_answer_computed_by_one_process_serves_the_others(
    province: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several API processes, an answer one computed is kept, sealed, in the database
    under its tag: another process asked the same sends it without computing it, and after a
    batch that changes it, both see the new tag and compute or share the new answer."""
    runtime = province
    assert create_app(runtime).state.shared_answers is None  # one process: nothing to share
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, workers=2))
    default = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-default')}"}
    with (
        TestClient(create_app(runtime), headers=default) as first,
        TestClient(create_app(runtime), headers=default) as second,
    ):
        params = {"level": "county"}
        computed = first.get("/staffing", params=params)
        shared = second.get("/staffing", params=params)
        assert (shared.content, shared.headers["ETag"]) == (
            computed.content,
            computed.headers["ETag"],
        )
        cache = second.app.state.answer_cache  # type: ignore[attr-defined]
        assert (cache.shared_hits, cache.hits, cache.misses) == (1, 1, 0)
        assert "relief_answer_cache_shared_hits_total 1.0" in second.get("/metrics").text
        with psycopg.connect(runtime.settings.database_url) as conn:
            stored = conn.execute(
                "SELECT body FROM relief.shared_answers WHERE tag = %s",
                (computed.headers["ETag"],),
            ).fetchone()
        assert stored is not None and b"440103" not in bytes(stored[0])  # sealed
        approve(runtime, application(runtime, "440104", village_="002"))
        catch_up(runtime)
        moved = second.get("/staffing", params=params)
        assert moved.headers["ETag"] != computed.headers["ETag"]
        assert cache.misses == 1
        again = first.get("/staffing", params=params)
        assert again.content == moved.content
        assert first.app.state.answer_cache.shared_hits == 1  # type: ignore[attr-defined]


def test_a_moving_answer_is_sent_as_last_computed_while_it_is_refreshed(
    province: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``RELIEF_ANSWER_MAX_STALE_MS``, a request whose tag moved past the answer last
    computed for it, while that answer was current within the bound, is sent that answer
    under its own tag (a 304 to a client holding it), and the process computes the new one in
    the background, once, where the next request finds it. ``Cache-Control: no-cache`` or
    ``max-age=0`` has the answer computed at once, and an answer past the bound is never sent."""
    from api.routes import staffing as staffing_routes

    runtime = province
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, answer_max_stale_ms=60_000))
    default = {"Authorization": f"Bearer {token('auditor', '44', 'auditor-default')}"}
    params = {"division": "440104"}

    def households(response: Any) -> int:
        rows = {r["division"]: r["households"] for r in response.json()["items"]}
        return int(rows["440104"])

    with TestClient(create_app(runtime), headers=default) as client:
        cache = client.app.state.answer_cache  # type: ignore[attr-defined]
        refreshes = client.app.state.refreshes  # type: ignore[attr-defined]
        first = client.get("/staffing", params=params)
        tag = first.headers["ETag"]
        # The computation held until released: the refresh runs while the readers are sent.
        release, real = threading.Event(), staffing_routes.current_staffing

        def held(*args: Any, **kwargs: Any) -> Any:
            release.wait(10)
            return real(*args, **kwargs)

        monkeypatch.setattr(staffing_routes, "current_staffing", held)
        approve(runtime, application(runtime, "440104", village_="002"))
        catch_up(runtime)
        behind = client.get("/staffing", params=params)
        assert (behind.content, behind.headers["ETag"]) == (first.content, tag)
        revalidated = client.get("/staffing", params=params, headers={"If-None-Match": tag})
        assert revalidated.status_code == 304 and revalidated.headers["ETag"] == tag
        assert (cache.stale, cache.refreshed, refreshes.running()) == (2, 1, 1)
        release.set()
        deadline = time.monotonic() + 10
        while refreshes.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        misses = cache.misses
        fresh = client.get("/staffing", params=params)
        assert fresh.headers["ETag"] != tag and cache.misses == misses  # kept by the refresh
        assert households(fresh) == households(first) + 1
        metrics = client.get("/metrics").text
        assert "relief_answer_cache_stale_total 2.0" in metrics
        assert "relief_answer_cache_refreshed_total 1.0" in metrics
        # The clients' requests, not the refresh the process asked itself.
        counted = 'relief_http_requests_total{method="GET",route="/staffing",status="200"} 3.0'
        assert counted in metrics
        # Asked for the newest: computed at once, never the one kept.
        approve(runtime, application(runtime, "440104", village_="003"))
        catch_up(runtime)
        for header in ("no-cache", "max-age=0"):
            now = client.get("/staffing", params=params, headers={"Cache-Control": header})
            assert households(now) == households(fresh) + 1, header
        assert cache.stale == 2
    # Past the bound the answer last computed is not sent: the request computes its own.
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, answer_max_stale_ms=1))
    with TestClient(create_app(runtime), headers=default) as client:
        cache = client.app.state.answer_cache  # type: ignore[attr-defined]
        first = client.get("/staffing", params=params)
        approve(runtime, application(runtime, "440104", village_="004"))
        catch_up(runtime)
        time.sleep(0.01)
        moved = client.get("/staffing", params=params)
        assert moved.headers["ETag"] != first.headers["ETag"] and cache.stale == 0
        assert households(moved) == households(first) + 1


def test_every_conditional_answer_documents_its_304(client: TestClient) -> None:
    """A dashboard GET answers 304 to an If-None-Match naming its tag (or ``*``): the OpenAPI
    document lists it for exactly the routes that can."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/caseload", "/staffing", "/staffing/summary", "/staffing/villages", "/alerts"):
        assert "304" in paths[path]["get"]["responses"], path
    assert "304" not in paths["/cases/{case_id}"]["get"]["responses"]
    tag = client.get("/staffing").headers["ETag"]
    assert client.get("/staffing", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get("/staffing", headers={"If-None-Match": tag}).status_code == 304


def test_requests_asking_while_an_answer_is_computed_wait_for_it(
    client: TestClient, province: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a batch moves a tag every reader asks at once: the process computes the answer
    once, and the requests that asked meanwhile are sent it when it is ready."""
    from api.routes import staffing as staffing_routes

    cache = client.app.state.answer_cache  # type: ignore[attr-defined]
    computed: list[int] = []
    real = staffing_routes.current_villages

    def slow(*args: Any, **kwargs: Any) -> Any:
        computed.append(1)
        time.sleep(0.3)  # long enough for the others to ask while it runs
        return real(*args, **kwargs)

    monkeypatch.setattr(staffing_routes, "current_villages", slow)
    path, params = "/staffing/villages", {"status": "under_staffed"}
    hits, misses = cache.hits, cache.misses
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.get(path, params=params), range(6)))
    assert len(computed) == 1
    assert {(a.status_code, a.content, a.headers["ETag"]) for a in answers} == {
        (200, answers[0].content, answers[0].headers["ETag"])
    }
    assert (cache.coalesced, cache.hits - hits, cache.misses - misses) == (5, 5, 1)
    assert "relief_answer_cache_coalesced_total 5.0" in client.get("/metrics").text
    # When the computation they waited for fails, they compute the answer themselves.
    failed: list[int] = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(1)
            time.sleep(0.3)
            raise RuntimeError("the read failed")
        computed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(staffing_routes, "current_villages", failing_once)
    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(
            a.status_code
            for a in pool.map(lambda _: client.get(path, params={"status": "ok"}), range(3))
        )
    assert statuses == [200, 200, 500] and len(computed) == 3
