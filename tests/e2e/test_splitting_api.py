"""Contract splitting across purchasers over HTTP: a county, its prefecture and the province
award one contractor the same care just under the tender limit; supervision in scope sees one
alert naming the limit's source, supervision elsewhere does not."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from infra.runtime import Runtime
from projections.red_flags.projection import RedFlagsProjection
from tests.e2e.http import actor, ok, refused
from tests.factories import credit_code

pytestmark = pytest.mark.e2e

PROVINCE = actor("handling_staff", "44", "officer-province", scope="44")
SUPERVISOR = actor("supervisor", "4401", "supervisor-gz", scope="4401")
ELSEWHERE = actor("supervisor", "4403", "supervisor-sz", scope="4403")


def test_awards_split_across_purchasers_of_one_prefecture(
    client: TestClient, runtime: Runtime
) -> None:
    today = runtime.services.clock.today()
    ids = []
    for name, purchasers in (
        ("Tongxin", ("440103", "4401", "44")),
        ("Twin", ("440103", "4403", "44")),
    ):
        contractor = ok(
            client.post(
                "/contractors",
                headers=PROVINCE,
                json={
                    "name": name,
                    "contractor_type": "social_organisation",
                    "credit_code": credit_code("52"),
                },
            ),
            201,
        )
        ids.append(contractor["contractor_id"])
        for (ago, value), purchaser in zip(
            ((40, "960000"), (25, "985000"), (10, "930000")), purchasers, strict=True
        ):
            ok(
                client.post(
                    "/contracts",
                    headers=PROVINCE,
                    json={
                        "contractor_id": contractor["contractor_id"],
                        "purchaser": purchaser,
                        "work_items": ["care_and_nursing"],
                        "service_area": [
                            purchaser
                            if len(purchaser) == 6
                            else f"{purchaser}05"[
                                :6
                            ]  # a county of that prefecture in the test register
                            if len(purchaser) == 4
                            else "440103"
                        ],
                        "start": (today - dt.timedelta(days=ago)).isoformat(),
                        "end": (today + dt.timedelta(days=300)).isoformat(),
                        "value": value,
                        "funding_source": "special_relief_funds",
                        "awarded_on": (today - dt.timedelta(days=ago)).isoformat(),
                    },
                ),
                201,
            )
    runtime.projection_runner(RedFlagsProjection).catch_up()
    params = {"rule": "contract_splitting"}
    found = ok(client.get("/alerts", params=params, headers=SUPERVISOR))["items"]
    assert [a["subject_id"] for a in found] == [ids[0]]
    assert "split_threshold of the red-flag configuration" in found[0]["reason"]
    assert "from purchasers 44, 4401, 440103," in found[0]["reason"]
    assert ok(client.get("/alerts", params=params, headers=ELSEWHERE))["items"] == []
    refused(client.get(f"/alerts/{found[0]['alert_id']}", headers=ELSEWHERE), 404, "not-found")
