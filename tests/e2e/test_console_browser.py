"""The console in a real browser: Debian's Chromium driven by Selenium over a real HTTP server.

A supervisor takes alerts to an investigation closed with a sanction; an auditor replays a case
as of the day of its decision. Each page is saved as a screenshot at 1366×768 (the README shows
them) in ``$RELIEF_SCREENSHOT_DIR`` (default ``build/screenshots``).

Chromium comes from Debian (``apt-get install chromium chromium-driver``: ``make test`` installs
them when missing and it may); nothing is downloaded from elsewhere. Without them the tests are
skipped, saying so.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from infra.embedded_kafka import free_loopback_port
from infra.runtime import Runtime
from tests.e2e.test_console import SUPERVISOR_TOKEN, project
from tests.e2e.test_supervision import catch_up, misconduct
from tests.factories import token
from tests.scenario import application, approve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SHOTS = Path(os.environ.get("RELIEF_SCREENSHOT_DIR", ROOT / "build" / "screenshots"))

webdriver: Any
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - the dev extra installs it
    webdriver = None

if webdriver is None or CHROMIUM is None or DRIVER is None:
    pytestmark = [
        pytest.mark.e2e,
        pytest.mark.skip(
            reason="browser tests need Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver; make test installs them as root) "
            "and selenium (pip install -e '.[dev]')"
        ),
    ]


@pytest.fixture()
def served(runtime: Runtime) -> Iterator[str]:
    """The application on a real loopback port, as a browser reaches it."""
    port = free_loopback_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture()
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1366,768",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_window_size(1366, 768)
    yield driver
    driver.quit()


def shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(driver: Any, css: str) -> Any:
    return WebDriverWait(driver, 15).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def sign_in(driver: Any, base: str, bearer: str) -> None:
    driver.get(f"{base}/console/login")
    driver.find_element(By.NAME, "token").send_keys(bearer)
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    wait_for(driver, "header .who b")


def send(driver: Any, form: Any) -> None:
    """Submit a form and wait until the next page replaced it."""
    form.find_element(By.CSS_SELECTOR, "button").click()
    # Asked mid-navigation, chromedriver may answer "unhandled inspector error" instead of
    # "stale": not yet an answer, ask again.
    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(EC.staleness_of(form))


def fill(driver: Any, form: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = form.find_element(By.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)


def test_a_supervisor_takes_alerts_to_a_sanction(
    client: TestClient, runtime: Runtime, served: str, browser: Any
) -> None:
    story = misconduct(client, runtime)
    project(runtime)
    sign_in(browser, served, SUPERVISOR_TOKEN)
    shot(browser, "login-done")

    # Overview: caseload, drill down a level, a division's staffing history as a chart.
    browser.get(f"{served}/console/")
    wait_for(browser, "#caseload")
    shot(browser, "overview")
    browser.find_element(By.CSS_SELECTOR, "#caseload tbody a").click()
    wait_for(browser, "#caseload")
    assert "level=township" in browser.current_url
    browser.find_element(By.CSS_SELECTOR, "#staffing button").click()
    wait_for(browser, "#staffing svg.chart")  # htmx swapped the chart in
    shot(browser, "overview-staffing")

    # The alerts queue, filtered to the contractor; cite both alerts.
    browser.get(f"{served}/console/alerts?contractor_id={story['cid']}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#alerts tr.alert")
    assert len(rows) == 2
    shot(browser, "alerts")
    for box in browser.find_elements(By.NAME, "alert_ids"):
        box.click()
    browser.find_element(By.CSS_SELECTOR, "form[action='/console/investigations'] button").click()
    form = wait_for(browser, "#open-form")
    fill(browser, form, {"grounds": "care recorded outside the contract"})
    send(browser, form)
    investigation = browser.current_url
    catch_up(runtime)  # the cited alerts are now under review: the list of open ones shows it
    browser.get(f"{served}/console/investigations")
    listed = wait_for(browser, "#open-investigations")
    assert listed.find_elements(By.CSS_SELECTOR, f"a[href='{urlsplit(investigation).path}']")
    shot(browser, "investigations")
    browser.get(investigation)

    note = browser.find_element(By.ID, "note-form")
    fill(browser, note, {"text": "visited: no carer ever came"})
    send(browser, note)
    findings = wait_for(browser, "#findings-form")
    fill(browser, findings, {"summary": "care invoiced but never delivered"})
    for select in findings.find_elements(By.CSS_SELECTOR, "select"):
        Select(select).select_by_value("confirmed")
    send(browser, findings)
    closure = wait_for(browser, "#closure-form")
    today = runtime.services.clock.today()
    fill(
        browser,
        closure,
        {
            "outcome": "violation",
            "summary": "falsified service records",
            "violation_kind": "falsification",
            "severity": "serious",
            "description": "care recorded that was never delivered",
            "penalty_kind": "fine",
            "penalty_basis": "contract clause 9",
            "penalty_amount": "5000.00",
            "ban_start": today.isoformat(),
            "ban_end": (today + dt.timedelta(days=365)).isoformat(),
            "ban_reason": "falsification",
            "ban_unit": "440103",
        },
    )
    shot(browser, "investigation")
    send(browser, closure)
    wait_for(browser, "#closure")
    assert "closure-form" not in browser.page_source
    shot(browser, "investigation-closed")
    assert runtime.ledger.get_contractor(uuid.UUID(story["cid"])).ban_on(today) is not None

    catch_up(runtime)  # the alerts' review status follows the closure
    browser.get(f"{served}/console/contractors/{story['cid']}")
    wait_for(browser, "#dossier-timeline")
    shot(browser, "dossier")


def test_an_auditor_replays_a_case_as_of_its_decision(
    runtime: Runtime, served: str, browser: Any
) -> None:
    case = application(runtime, "440103")
    approve(runtime, case)
    project(runtime)
    decided = next(
        e.timestamp for e in runtime.ledger.events.get(case.id) if type(e).__name__ == "Approved"
    )
    sign_in(browser, served, token("auditor", "44", "auditor-7", "44"))
    browser.get(f"{served}/console/cases/{case.id}")
    form = wait_for(browser, "#purpose-form")
    fill(browser, form, {"purpose": "annual audit"})
    send(browser, form)
    as_of = wait_for(browser, "#as-of")
    # a second after the decision was recorded: the case as the approver left it
    fill(browser, as_of, {"at": (decided + dt.timedelta(seconds=1)).isoformat()})
    send(browser, as_of)
    wait_for(browser, ".asof")
    assert browser.find_element(By.ID, "case-status").text == "在保"
    assert case.applicant_id not in browser.page_source
    shot(browser, "case")
    runtime.checkpointer().run_once()  # the log signed, as the running checkpointer does
    browser.get(f"{served}/console/audit?verify=true")
    report = wait_for(browser, "#verify-report")
    assert "完整" in report.text  # intact
    assert browser.find_elements(By.CSS_SELECTOR, "#checkpoints td.n")  # a checkpoint listed
    assert browser.find_element(By.ID, "bundle-form").is_displayed()
    assert "relief audit verify-bundle" in browser.page_source
    shot(browser, "audit")
    browser.get(f"{served}/console/?lang=en")
    wait_for(browser, "#caseload")
    assert "Caseload by programme and status" in browser.page_source
    shot(browser, "overview-en")


def test_api_docs_render_in_the_browser_from_local_assets(served: str, browser: Any) -> None:
    """Swagger UI and ReDoc draw the operations with nothing but the server's own assets (the
    machine reaches no CDN)."""
    browser.get(f"{served}/docs")
    WebDriverWait(browser, 30).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock"))
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) > 50
    shot(browser, "docs")
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(served) for url in loaded), loaded
    browser.get(f"{served}/redoc")
    WebDriverWait(browser, 30).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id]"))
    )
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(url.startswith(served) for url in loaded), loaded
