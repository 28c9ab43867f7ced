"""The deployment ``make up`` starts: campaigns triggered, watched, cleared and recovered through the REST API,
then the UI in headless Chromium (the grid, the trigger form, the HubSpot links).

The UI part needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); its screenshots
are saved under ``tests/artifacts/``. Everything here shares one stack, so it lives in one file: the suite's
workers take whole files (``--dist loadfile``). ``test_deployment_workers.py`` runs a second stack beside it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reengagement import audit
from reengagement.campaign import PARAMS_SCHEMA, WAIT_EXAMPLES

from include.airflow_stack.api import AirflowApiError
from include.airflow_stack.shape import ADMIN_PASSWORD, ADMIN_USER
from include.airflow_stack.stack import DAG_ID
from tests.integration.conftest import Deployment, assert_no_duplicates, wait_until

pytestmark = pytest.mark.integration

WAIT_TASK = "round_1.wait_for_responses"
WAIT_TASKS = (WAIT_TASK, "round_2.wait_for_responses")
CONSUMER = "hubspot_ledger_to_warehouse"


def celery_active(deployment: Deployment) -> str:
    """What the Celery workers are running right now, as Celery reports it on the stack's broker (JSON text).

    A bare Celery app on the same broker asks the workers' control queue: an answer in about a second, where
    Airflow's ``celery inspect`` command first spends seconds importing Airflow.
    """
    from celery import Celery

    app = Celery(broker=deployment.stack.config.broker_url)
    try:
        # The stack has one worker: its answer is the last one, so do not wait out the timeout for more.
        return json.dumps(app.control.inspect(timeout=5, limit=1).active() or {})
    finally:
        app.close()


def released_while_deferred(deployment: Deployment, run_id: str, wait_task: str) -> bool:
    """Whether Celery was seen running no wait while ``wait_task`` was deferred in the triggerer.

    The task's state is read after each answer of Celery's, so a wait that ended (or ended and started again)
    before Celery let go of it counts as not seen, never as seen.
    """
    waiting = deployment.api.wait_for_task(DAG_ID, run_id, wait_task, {"deferred"}, timeout=300)
    assert waiting["trigger"]["classpath"] == "airflow.providers.standard.triggers.temporal.DateTimeTrigger"
    while True:
        active = celery_active(deployment)
        if deployment.states(run_id)[wait_task] != "deferred":
            return False
        if "wait_for_responses" not in active:
            return True
        time.sleep(0.5)


def test_a_two_round_campaign_waits_in_the_triggerer_and_finishes_once_after_a_failed_step_is_cleared(
    deployment: Deployment,
):
    deployment.fresh_portal()
    # The portal has used up its exports for the day: after both rounds, the export fails at once (no retry
    # can help) and the run fails before anybody is opted out.
    daily_exports = deployment.admin("GET", "settings")["exports_per_day"]
    deployment.admin("PUT", "settings", {"exports_per_day": 0})
    deployment.trigger("ci-two-rounds", rounds=2, wait="PT12S", notify_emails=["ops@example.com"])

    # The worker gives its slot back once a wait is deferred, while the wait goes on in the triggerer. One of
    # the two rounds' waits is enough to see it: a loaded machine may take a whole wait to show Celery idle.
    released = any(released_while_deferred(deployment, "ci-two-rounds", wait) for wait in WAIT_TASKS)
    assert released, "neither round's deferred wait was seen without its Celery worker slot"
    run = deployment.api.wait_for_run(DAG_ID, "ci-two-rounds", timeout=600)
    failed = deployment.api.task_instances(DAG_ID, "ci-two-rounds")["export_unconfirmed"]
    assert run["state"] == "failed"
    assert (failed["state"], failed["try_number"]) == ("failed", 1)
    assert deployment.states("ci-two-rounds")["opt_out_unconfirmed"] == "upstream_failed"
    assert deployment.status_changes() == []
    export_log = json.dumps(
        deployment.api.call("GET", f"dags/{DAG_ID}/dagRuns/ci-two-rounds/taskInstances/export_unconfirmed/logs/1")
    )
    assert "Nobody was opted out" in export_log
    # The step that failed for good told the run's address once, with its first error line and the run's link.
    failed_mail = "Campaign ci-two-rounds: step export_unconfirmed failed"
    wait_until(lambda: failed_mail in deployment.inbox.subjects(), "the failure notification")
    assert deployment.inbox.subjects().count(failed_mail) == 1
    assert f"{deployment.stack.config.api_url}/dags/{DAG_ID}/runs/ci-two-rounds" in deployment.inbox.body(failed_mail)

    deployment.admin("PUT", "settings", {"exports_per_day": daily_exports})  # a day later
    cleared = deployment.api.clear(DAG_ID, "ci-two-rounds", ["export_unconfirmed"], include_downstream=True)
    assert "export_unconfirmed" in {ti["task_id"] for ti in cleared}
    run = deployment.api.wait_for_run(DAG_ID, "ci-two-rounds", timeout=600)
    assert run["state"] == "success", deployment.states("ci-two-rounds")
    states = deployment.states("ci-two-rounds")
    assert states["round_2.send_email"] == "success" and states["round_3.send_email"] == "skipped"
    assert {c["contactId"] for c in deployment.status_changes()} == deployment.truth(2)
    assert_no_duplicates(deployment, "ci-two-rounds", rounds=2)
    logs = f"dags/{DAG_ID}/dagRuns/ci-two-rounds/taskInstances/{WAIT_TASK}/logs/1"
    log = json.dumps(deployment.api.call("GET", logs))
    assert "DEFERRED" in log  # the worker let go ...
    assert f"trigger {DAG_ID}/ci-two-rounds/{WAIT_TASK}/-1/1" in log  # ... and the triggerer ran the wait


def test_a_finished_campaign_cleared_from_list_one_adds_to_its_ledger_and_keeps_its_report(deployment: Deployment):
    """Clearing ``round_1.build_confirmed_list`` with everything after it reruns both rounds' later steps and the
    opt-out: the audit ledger only grows (the rerun's try finds everyone already opted out), the report stays."""
    run_id = "ci-two-rounds"  # the first test's campaign, finished
    ledger, report = deployment.served(run_id, "ledger.csv"), deployment.served(run_id, "files/report.csv")
    changed = {c["contactId"] for c in deployment.status_changes()}
    cleared = deployment.api.clear(DAG_ID, run_id, ["round_1.build_confirmed_list"], include_downstream=True)
    assert {"round_1.build_confirmed_list", "round_2.send_email", "opt_out_unconfirmed"} <= {
        ti["task_id"] for ti in cleared
    }
    run = deployment.api.wait_for_run(DAG_ID, run_id, timeout=600)
    assert run["state"] == "success", deployment.states(run_id)

    rerun_ledger = deployment.served(run_id, "ledger.csv")
    assert rerun_ledger.startswith(ledger) and len(rerun_ledger) > len(ledger)  # it only grew
    before = list(csv.DictReader(io.StringIO(ledger)))
    added = list(csv.DictReader(io.StringIO(rerun_ledger)))[len(before) :]
    assert {row["reason"] for row in added} == {"NO_STATUS_CHANGE"}
    assert {row["contact_id"] for row in added} == {row["contact_id"] for row in before} >= changed
    assert deployment.served(run_id, "files/report.csv") == report
    assert {c["contactId"] for c in deployment.status_changes()} == changed  # nobody changed twice
    assert_no_duplicates(deployment, run_id, rounds=2)


def consumer_run_of(deployment: Deployment, run_id: str) -> str | None:
    """The run of the example warehouse load that the campaign run ``run_id``'s ledger event started."""
    runs = deployment.api.call("GET", f"dags/{CONSUMER}/dagRuns", limit=100)["dag_runs"]
    for run in runs:
        events = deployment.api.call("GET", f"dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        if any(e["source_run_id"] == run_id for e in events["asset_events"]):
            return str(run["dag_run_id"])
    return None


def completed(events: list[dict], run_id: str, task_id: str) -> dict:
    """The OpenLineage COMPLETE event of one task of one campaign run."""
    found = [
        e
        for e in events
        if e["eventType"] == "COMPLETE"
        and e["job"]["name"] == f"{DAG_ID}.{task_id}"
        and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") == run_id
    ]
    assert len(found) == 1, f"{len(found)} COMPLETE events of {task_id} in {run_id}"
    return found[0]


def test_a_campaign_feeds_the_warehouse_through_its_assets_reports_lineage_and_tells_people(deployment: Deployment):
    run_id = "ci-data-platform"
    deployment.fresh_portal()
    deployment.trigger(run_id, rounds=1, require_approval=True, notify_emails=["ops@example.com"])
    deployment.api.wait_for_task(DAG_ID, run_id, "approve_opt_out", {"awaiting_input"}, timeout=300)
    approval_mail = f"Campaign {run_id}: approve the opt-out of"
    wait_until(lambda: any(approval_mail in s for s in deployment.inbox.subjects()), "the approval notification")
    deployment.api.call(
        "PATCH",
        f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/approve_opt_out/-1/hitlDetails",
        {"chosen_options": ["Approve"], "params_input": {}},
    )
    assert deployment.api.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success", deployment.states(run_id)
    opted_out = {c["contactId"] for c in deployment.status_changes()}
    assert opted_out == deployment.truth(1)

    # Notifications: the approval with its links, then the finished run's summary.
    assert f"/reengagement/runs/{DAG_ID}/{run_id}/" in deployment.inbox.body(approval_mail)
    finished_mail = f"Campaign {run_id}: finished"
    wait_until(lambda: finished_mail in deployment.inbox.subjects(), "the success notification")
    assert f"{len(opted_out)} opted out" in deployment.inbox.body(finished_mail)

    # Assets: the ledger's event started the example load, which put the run's ledger rows in the warehouse.
    consumer_run = wait_until(lambda: consumer_run_of(deployment, run_id), "the warehouse load run", timeout=120)
    loaded = deployment.api.wait_for_run(CONSUMER, str(consumer_run), timeout=300)
    assert loaded["state"] == "success" and loaded["run_type"] == "asset_triggered"
    ledger = list(csv.DictReader(io.StringIO(deployment.served(run_id, "ledger.csv"))))
    with sqlite3.connect(deployment.stack.warehouse_path) as warehouse:
        rows = warehouse.execute("SELECT contact_id FROM hubspot_audit_ledger WHERE campaign = ?", (run_id,)).fetchall()
    assert sorted(str(r[0]) for r in rows) == sorted(row["contact_id"] for row in ledger)
    assert {row["contact_id"] for row in ledger if row["reason"] in audit.CHANGED} == opted_out

    # History: the report shows the portal's earlier campaigns of this deployment (the two-round one, in order).
    report = deployment.served(run_id, "report")
    history = report[report.index("Campaign history (portal") :]
    earlier = {p.parent.parent.name for p in deployment.exports.glob("*/*/outcome.json")} - {run_id}
    assert all(f">{campaign}<" in history for campaign in earlier), earlier

    # Lineage: the stack's OpenLineage events name the HubSpot list exported and the files written and read.
    portal = deployment.api.xcom(DAG_ID, run_id, "preflight")["portal_id"]
    events = wait_until(lambda: deployment.lineage_events(), "OpenLineage events")
    export = completed(events, run_id, "export_unconfirmed")
    assert [(d["namespace"], d["name"].split("/")[0]) for d in export["inputs"]] == [(f"hubspot://{portal}", "lists")]
    (export_file,) = export["outputs"]
    assert export_file["name"].endswith(f"/{run_id}/{run_id}/unconfirmed.csv")
    opt_out = completed(events, run_id, "opt_out_unconfirmed")
    assert (export_file["namespace"], export_file["name"]) in {(d["namespace"], d["name"]) for d in opt_out["inputs"]}
    assert any(f"/{run_id}/audit_ledger/" in d["name"] for d in opt_out["outputs"])


# -- the UI, in a real browser ----------------------------------------------------------------------------------
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: The grid's top level: a group per step (or round), the branches between rounds, the report.
STEP_TASKS = ["select_cohort", "round_1", "another_round_1", "round_2", "opt_out", "campaign_report"]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            "the UI test needs Debian's chromium and chromium-driver: apt-get install chromium "
            "chromium-driver (.ci/run does)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--password-store=basic",
    ):
        options.add_argument(arg)
    # The explicit driver path keeps Selenium from trying to download one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def finished_run(deployment: Deployment) -> str:
    """A successful campaign run to look at: an earlier test's, or a new 1-round one."""
    runs = deployment.api.call("GET", f"dags/{DAG_ID}/dagRuns", state="success", limit=1)["dag_runs"]
    if runs:
        return runs[0]["dag_run_id"]
    run_id = f"ci-ui-{int(time.time())}"
    deployment.fresh_portal()
    deployment.trigger(run_id, wait="PT40S")  # longer than any sandbox's response window
    assert deployment.api.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    return run_id


@pytest.fixture(scope="module")
def logged_in(browser, deployment: Deployment):
    from selenium.webdriver.common.by import By

    base = deployment.stack.config.api_url
    browser.get(f"{base}/dags/{DAG_ID}")
    wait_until(lambda: "/auth/login" in browser.current_url, "the login page")
    wait_until(lambda: browser.find_element(By.NAME, "username"), "the login form").send_keys(ADMIN_USER)
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: "/auth/login" not in browser.current_url, "the DAG after logging in")
    return browser


def page_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


def shows(browser, *texts: str) -> bool:
    """Whether the page shows every one of ``texts``, from one read of it (each read is a round trip)."""
    page = page_text(browser)
    return all(text in page for text in texts)


def test_the_grid_shows_every_step_of_the_campaign(logged_in, deployment: Deployment, finished_run: str):
    base = deployment.stack.config.api_url
    logged_in.get(f"{base}/dags/{DAG_ID}/runs/{finished_run}")
    wait_until(lambda: shows(logged_in, *STEP_TASKS), "every step task in the grid")
    time.sleep(2)  # let the cells paint before the screenshot
    logged_in.save_screenshot(str(ARTIFACTS / "grid.png"))


def test_the_run_page_shows_the_campaign_report_and_the_report_task_links_to_it(
    logged_in, deployment: Deployment, finished_run: str
):
    from selenium.webdriver.common.by import By

    base = deployment.stack.config.api_url
    # The "Campaign report" tab of the run page: the plugin's report, in a frame, with the UI's own login.
    logged_in.get(f"{base}/dags/{DAG_ID}/runs/{finished_run}/plugin/campaign-report")
    frame = wait_until(lambda: logged_in.find_element(By.TAG_NAME, "iframe"), "the report tab's frame")
    logged_in.switch_to.frame(frame)
    try:
        wait_until(
            lambda: shows(logged_in, "Round 1", "confirmed"),
            "the funnel in the report tab",
        )
    finally:
        logged_in.switch_to.default_content()
    logged_in.save_screenshot(str(ARTIFACTS / "report_tab.png"))
    # The report task's extra link opens the same report.
    logged_in.get(f"{base}/dags/{DAG_ID}/runs/{finished_run}/tasks/campaign_report/details")
    link = wait_until(
        lambda: next(a for a in logged_in.find_elements(By.TAG_NAME, "a") if a.text.strip() == "Report"),
        "the report task's Report link",
    )
    href = link.get_attribute("href")
    assert f"/reengagement/runs/{DAG_ID}/" in href, href
    logged_in.get(href)
    wait_until(
        lambda: shows(logged_in, "Round 1", "opted out"),
        "the funnel behind the Report link",
    )
    logged_in.save_screenshot(str(ARTIFACTS / "report.png"))


def test_the_trigger_form_shows_the_params_with_their_descriptions(logged_in, deployment: Deployment):
    from selenium.webdriver.common.by import By

    logged_in.get(f"{deployment.stack.config.api_url}/dags/{DAG_ID}")
    trigger = wait_until(
        lambda: next(b for b in logged_in.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Trigger"),
        "the Trigger button",
    )
    trigger.click()
    descriptions = [spec["description"].split(".")[0] for spec in PARAMS_SCHEMA.values()]

    def missing() -> list[str]:
        text = page_text(logged_in)  # one read of the page per look: each is a round trip to the browser
        return [d for d in descriptions if d not in text]

    try:
        wait_until(lambda: not missing(), "every param's description")
    except AssertionError as err:
        raise AssertionError(f"{err}; missing: {missing()}") from None
    finally:
        logged_in.save_screenshot(str(ARTIFACTS / "trigger_form.png"))
    suggestions = [o.get_attribute("value") for o in logged_in.find_elements(By.CSS_SELECTOR, "#list_wait option")]
    assert suggestions == list(WAIT_EXAMPLES)


@pytest.mark.parametrize(
    ("conf", "refusal"), [({"rounds": 5}, "is not one of [1, 2, 3]"), ({"wait": "P7X"}, "is not a 'duration'")]
)
def test_a_run_with_an_invalid_param_is_refused_in_plain_words(deployment: Deployment, conf, refusal):
    with pytest.raises(AirflowApiError) as refused:
        deployment.api.trigger(DAG_ID, "ci-refused", conf)
    assert "-> 400" in str(refused.value) and refusal in str(refused.value)
    assert "pattern" not in str(refused.value)
    with pytest.raises(AirflowApiError, match="-> 404"):  # no run was created
        deployment.api.run(DAG_ID, "ci-refused")


def test_a_finished_task_links_to_its_hubspot_list(logged_in, deployment: Deployment, finished_run: str):
    from selenium.webdriver.common.by import By

    list_id = deployment.api.xcom(DAG_ID, finished_run, "build_unengaged_list")["list_id"]
    logged_in.get(
        f"{deployment.stack.config.api_url}/dags/{DAG_ID}/runs/{finished_run}/tasks/build_unengaged_list/details"
    )
    link = wait_until(
        lambda: next(
            a
            for a in logged_in.find_elements(By.TAG_NAME, "a")
            if f"/objectLists/{list_id}/" in (a.get_attribute("href") or "")
        ),
        "the HubSpot link of the unengaged list",
    )
    logged_in.save_screenshot(str(ARTIFACTS / "extra_link.png"))
    assert link.text.strip() == "HubSpot"
    assert link.get_attribute("href").startswith("https://")
