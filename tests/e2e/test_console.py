"""The console in a real browser: headless Chromium driven by Selenium through the system's
chromedriver (`make browser` installs both), against the e2e system's processes and the dev
identity provider's own sign-in page. A failing test leaves `failure.png` and `failure.html`
in its tmp folder (pytest prints the path).

- an agent signs in, finds the newest detractor case, logs a contact, resolves it with a root
  cause, and sees both on the timeline under their email address;
- a lead reassigns a case, and an owner outside the team is refused with the API's reason;
  a lead assigns the cases selected in the queue at once;
- a viewer is refused the queue with a clear message and sees no customer's email, but the
  dashboard (NPS by month, as a chart and a table);
- signing out ends the session: the next page asks to sign in again;
- the queue's filter form keeps its filters in the URL, a filter followup refuses is shown
  with its reason, and each open case's deadline counts down in the page (a small script
  over the deadline instants and business time the server gave, driven here by a clock the
  test moves);
- the case page shows every score the customer gave, their time now and attributes, the
  comment with the words scoring matched to a theme marked (`<mark>`, the theme named in
  words) and the themes as tags, and the escalation ladder with its next step;
- the dashboard compares the last days with as many days before: new answers move the
  right cells by one, and the owner's figures (a lead's) count the new case;
- the dashboard narrowed to one survey counts its answer and its case only, with the times to
  first contact and to resolution, the closed-loop and recovery rates by team and by owner;
  two of scoring's dimensions at once, or a malformed attribute, are refused with the reason;
- the policy page is a table with a row per rule of the policy file in force.
"""

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from nps_followup.adapters.policy_file import parse_policy
from tests.e2e.conftest import TOKEN, System
from tests.e2e.test_detractor_journey import a_response
from tests.support.polling import eventually_sync

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AGENT = "alex@example.com"
LEAD = "cs-lead@example.com"
VIEWER = "analyst@example.com"


@pytest.fixture
def browser(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("Chromium and chromedriver are needed: `make browser` installs them")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            driver.save_screenshot(str(tmp_path / "failure.png"))
            (tmp_path / "failure.html").write_text(driver.page_source)
        driver.quit()


#: Lets a test move the page's clock: `Date.now()` plus `window.__skew`, and the page's
#: interval callbacks kept in `window.__ticks` so the test can run them at once.
MOVABLE_CLOCK = """
(function () {
  var now = Date.now.bind(Date);
  window.__skew = 0;
  Date.now = function () { return now() + window.__skew; };
  window.__ticks = [];
  var every = window.setInterval.bind(window);
  window.setInterval = function (f, ms) { window.__ticks.push(f); return every(f, ms); };
})();
"""


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, 30, poll_frequency=0.1)


def _sign_in(driver: WebDriver, system: System, person: str, *, path: str = "/cases") -> None:
    """Open `path` on the console, choose `person` on the dev provider's sign-in page, and
    come back to `path`."""
    console = system.url("console")
    driver.get(f"{console}{path}")
    button = _wait(driver).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f'button[name="user"][value="{person}"]'))
    )
    button.click()
    _wait(driver).until(ec.url_contains(f"{console}{path.split('?', maxsplit=1)[0]}"))
    _wait(driver).until(ec.presence_of_element_located((By.ID, "signed-in-as")))


def _detractor_case(system: System) -> tuple[str, str]:
    """A new customer's detractor response, through ingest; its case id once followup has
    opened it, and the customer's id."""
    customer = f"console-{uuid.uuid4().hex[:8]}"
    answer = httpx.post(
        f"{system.url('ingest')}/v1/responses",
        json=a_response(customer),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text

    def cases() -> list[str]:
        found = httpx.get(
            f"{system.url('followup')}/v1/cases",
            params={"customer_id": customer},
            headers=system.infra.bearer("admin@example.com"),
            timeout=10,
        )
        found.raise_for_status()
        return [item["case_id"] for item in found.json()["items"]]

    [case_id] = eventually_sync(cases, until=bool, what="the detractor's case")
    return case_id, customer


def _submit(driver: WebDriver, form_id: str) -> None:
    """Submit the form and wait until its page is replaced by the answer's: otherwise a wait
    that follows may find an element of the old page (an earlier `#done`) and read it as
    the browser leaves that page ("Node … does not belong to the document")."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]").click()
    _wait(driver).until(_replaced(page))


def _replaced(page: WebElement) -> Callable[[WebDriver], bool]:
    """Whether `page` has left the document: stale, or, read while Chrome is leaving it, a
    node that "does not belong to the document" (which `ec.staleness_of` does not catch)."""

    def gone(_driver: WebDriver) -> bool:
        try:
            _ = page.tag_name
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False

    return gone


def _timeline(driver: WebDriver) -> list[tuple[str, str]]:
    """(kind, who) of each timeline entry."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    return [
        (row.get_attribute("data-kind") or "", row.find_element(By.CSS_SELECTOR, ".actor").text)
        for row in rows
    ]


def test_an_agent_logs_a_contact_and_resolves_the_newest_detractor_case(
    system: System, browser: WebDriver
) -> None:
    case_id, customer = _detractor_case(system)
    _sign_in(browser, system, AGENT)
    assert "Alex Agent (agent)" in browser.find_element(By.ID, "signed-in-as").text

    # The queue, filtered to the customer (the filters live in the URL).
    browser.find_element(By.ID, "filter-customer").send_keys(customer)
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    _wait(browser).until(ec.url_contains(f"customer={customer}"))
    row = browser.find_element(By.CSS_SELECTOR, f'#queue tr[data-case-id="{case_id}"]')
    assert row.find_elements(By.TAG_NAME, "td")[0].text.startswith(("Due in", "Overdue"))
    row.find_element(By.TAG_NAME, "a").click()
    _wait(browser).until(ec.url_contains(f"/cases/{case_id}"))
    assert browser.find_element(By.ID, "customer-email").text == f"{customer}@example.com"
    assert browser.find_element(By.ID, "status").text == "Open"
    # An agent is not offered a lead's steps.
    assert not browser.find_elements(By.ID, "form-close")

    browser.find_element(By.ID, "contact-channel").clear()
    browser.find_element(By.ID, "contact-channel").send_keys("phone")
    Select(browser.find_element(By.ID, "contact-outcome")).select_by_value("reached")
    browser.find_element(By.ID, "contact-note").send_keys("Called; the export fix is coming.")
    _submit(browser, "form-contact")
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "done"), "contact is logged"))
    assert browser.find_element(By.ID, "status").text == "Contacted"

    Select(browser.find_element(By.ID, "resolve-root-cause")).select_by_value("product_defect")
    _submit(browser, "form-resolve")
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "done"), "resolved"))
    assert browser.find_element(By.ID, "status").text == "Resolved"
    assert browser.find_element(By.ID, "root-cause").text == "product_defect"
    # A resolved case offers no contact or resolution any more.
    assert not browser.find_elements(By.ID, "form-contact")
    assert not browser.find_elements(By.ID, "form-resolve")

    timeline = _timeline(browser)
    assert ("contact", AGENT) in timeline
    assert ("resolved", AGENT) in timeline
    opened = next(who for kind, who in timeline if kind == "opened")
    assert opened.startswith("system (rule ")


def test_a_lead_reassigns_a_case_and_sees_why_an_outsider_cannot_own_it(
    system: System, browser: WebDriver
) -> None:
    case_id, _ = _detractor_case(system)
    _sign_in(browser, system, LEAD, path=f"/cases/{case_id}")
    first = browser.find_element(By.ID, "owner").text
    other = "sam@example.com" if first == AGENT else AGENT

    browser.find_element(By.ID, "assign-owner").send_keys("stranger@example.org")
    _submit(browser, "form-assign")
    _wait(browser).until(ec.presence_of_element_located((By.ID, "error-message")))
    assert "not accepted" in browser.find_element(By.ID, "error-message").text
    assert "not a member" in browser.find_element(By.ID, "error-detail").text
    assert browser.find_element(By.ID, "owner").text == first

    browser.find_element(By.ID, "assign-owner").send_keys(other)
    _submit(browser, "form-assign")
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "done"), "assigned"))
    assert browser.find_element(By.ID, "owner").text == other
    assert ("assigned", LEAD) in _timeline(browser)


def test_a_viewer_is_refused_the_queue_and_sees_no_customer_email(
    system: System, browser: WebDriver
) -> None:
    _, customer = _detractor_case(system)
    _sign_in(browser, system, VIEWER)
    message = browser.find_element(By.ID, "error-message").text
    assert message == "Your role does not allow this."
    assert "role agent" in browser.find_element(By.ID, "error-detail").text
    assert not browser.find_elements(By.ID, "queue")
    assert f"{customer}@example.com" not in browser.page_source
    assert "@example.com" not in browser.find_element(By.TAG_NAME, "main").text

    browser.get(f"{system.url('console')}/dashboard")
    _wait(browser).until(ec.presence_of_element_located((By.ID, "nps-title")))
    # The figures count the responses scored so far: a point per month, and its value.
    assert browser.find_elements(By.CSS_SELECTOR, "#nps-chart circle")
    assert browser.find_elements(By.CSS_SELECTOR, "#nps tbody tr")
    assert browser.find_elements(By.CSS_SELECTOR, "#comparison tbody tr")
    # Figures by owner name people: a lead's, not a viewer's.
    assert not browser.find_elements(By.ID, "owner-figures")
    assert "@example.com" not in browser.find_element(By.TAG_NAME, "main").text


def test_signing_out_ends_the_session(system: System, browser: WebDriver) -> None:
    _sign_in(browser, system, AGENT)
    browser.find_element(By.ID, "sign-out").click()
    _wait(browser).until(ec.url_contains("/signed-out"))
    browser.get(f"{system.url('console')}/cases")
    _wait(browser).until(ec.url_contains(system.infra.issuer))
    assert browser.find_elements(By.CSS_SELECTOR, 'button[name="user"]')


def test_a_lead_assigns_the_selected_cases_of_the_queue(system: System, browser: WebDriver) -> None:
    case_id, customer = _detractor_case(system)
    _sign_in(browser, system, LEAD, path=f"/cases?customer={customer}")

    def assign_selected(owner: str) -> str:
        browser.get(f"{system.url('console')}/cases?customer={customer}")
        row = _wait(browser).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-case-id="{case_id}"]'))
        )
        row.find_element(By.CSS_SELECTOR, 'input[type="checkbox"]').click()
        browser.find_element(By.ID, "bulk-owner").send_keys(owner)
        _submit(browser, "bulk-assign")
        summary = _wait(browser).until(ec.presence_of_element_located((By.ID, "assigned-summary")))
        return summary.text

    refused = assign_selected("stranger@example.org")
    assert refused.startswith("0 of 1 selected cases")
    assert "not a member" in browser.find_element(By.ID, "assigned").text

    assert (
        assign_selected("sam@example.com") == "1 of 1 selected cases now belong to sam@example.com."
    )
    browser.get(f"{system.url('console')}/cases/{case_id}")
    assert browser.find_element(By.ID, "owner").text == "sam@example.com"


def test_the_queue_filters_in_the_url_and_counts_deadlines_down(
    system: System, browser: WebDriver
) -> None:
    case_id, customer = _detractor_case(system)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MOVABLE_CLOCK})
    _sign_in(browser, system, AGENT)

    # Search by part of the customer's id, in other letters, with a segment and score range.
    browser.find_element(By.ID, "filter-customer").send_keys(customer[-6:].upper())
    Select(browser.find_element(By.ID, "filter-segment")).select_by_value("detractor")
    browser.find_element(By.ID, "filter-score-max").send_keys("6")
    browser.find_element(By.CSS_SELECTOR, "#queue-filters button[type=submit]").click()
    _wait(browser).until(ec.url_contains("score_max=6"))
    assert "segment=detractor" in browser.current_url
    row = browser.find_element(By.CSS_SELECTOR, f'#queue tr[data-case-id="{case_id}"]')
    assert browser.find_element(By.ID, "filter-score-max").get_attribute("value") == "6"

    # The countdown: the deadline followup gave, then the page's clock moved past it.
    cell = row.find_element(By.CSS_SELECTOR, "td.due")
    due_at = cell.get_attribute("data-due-at")
    assert due_at
    assert cell.text.startswith("Due in")
    browser.execute_script(
        "window.__skew = Date.parse(arguments[0]) - Date.now() + 60000;"
        "window.__ticks.forEach(function (f) { f(); });",
        due_at,
    )
    assert cell.text == "Overdue"
    assert "overdue" in (cell.get_attribute("class") or "")
    # While the team is at work, the business time left runs down with the clock, until
    # the end of its working day.
    browser.execute_script(
        "var cell = arguments[0], table = document.getElementById('queue');"
        "var base = Date.parse(table.dataset.now);"
        "window.__skew = 0; window.__skew = base - Date.now() + 75 * 60000;"
        "cell.dataset.dueAt = new Date(base + 86400000).toISOString();"
        "cell.dataset.left = '18000';"  # 5 business hours at the page's load
        "cell.dataset.runsUntil = new Date(base + 135 * 60000).toISOString();"
        "window.__ticks.forEach(function (f) { f(); });",
        cell,
    )
    assert cell.text == "Due in 4 business hours"  # 5 h - 1 h 15 min
    browser.execute_script(
        "var base = Date.parse(document.getElementById('queue').dataset.now);"
        "window.__skew = 0; window.__skew = base - Date.now() + 5 * 3600000;"
        "window.__ticks.forEach(function (f) { f(); });"
    )
    assert cell.text == "Due in 3 business hours"  # 5 h - 2 h 15 min (then the day ended)

    # A score range upside down: followup refuses it, and the form says why.
    browser.find_element(By.ID, "filter-score-min").send_keys("9")
    browser.find_element(By.CSS_SELECTOR, "#queue-filters button[type=submit]").click()
    refused = _wait(browser).until(ec.presence_of_element_located((By.ID, "filter-refused")))
    assert "score_min" in refused.text
    assert not browser.find_elements(By.ID, "queue")
    assert browser.find_element(By.ID, "filter-score-min").get_attribute("value") == "9"


def _answer(
    system: System,
    customer: str,
    score: int,
    at: datetime,
    *,
    comment: str | None = None,
    survey: str | None = None,
    **customer_: Any,
) -> None:
    body = a_response(customer, score=score)
    body["responded_at"] = at.isoformat()
    if comment is not None:
        body["comment"] = comment
    if survey is not None:
        body["survey_id"] = survey
    body["customer"].update(customer_)
    answer = httpx.post(
        f"{system.url('ingest')}/v1/responses",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def _open_case_of(system: System, customer: str) -> dict[str, Any]:
    def cases() -> list[dict[str, Any]]:
        found = httpx.get(
            f"{system.url('followup')}/v1/cases",
            params={"customer_id": customer, "status": "open"},
            headers=system.infra.bearer("admin@example.com"),
            timeout=10,
        )
        found.raise_for_status()
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    [case] = eventually_sync(cases, until=bool, what="the detractor's open case")
    return case


def test_the_case_page_shows_every_score_the_customer_gave_and_the_ladder(
    system: System, browser: WebDriver
) -> None:
    customer = f"history-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    # A promoter two months ago, then a detractor today: the case is today's.
    _answer(system, customer, 10, now - timedelta(days=60))
    _answer(
        system,
        customer,
        3,
        now - timedelta(minutes=5),
        comment="Way too expensive, and support never answered",
        timezone="Asia/Tokyo",
        attributes={"plan": "pro", "region": "apac"},
    )
    case = _open_case_of(system, customer)
    _sign_in(browser, system, AGENT, path=f"/cases/{case['case_id']}")

    # The comment with the words scoring matched marked, each naming its theme in words, and
    # beside it the themes scoring found in it, each a link to their queue.
    assert browser.find_element(By.ID, "comment").text == (
        "Way too expensive (theme: price), and support (theme: support) never answered "
        "(theme: support)"
    )
    marks = browser.find_elements(By.CSS_SELECTOR, "#comment mark")
    assert [(m.get_attribute("data-themes"), m.text) for m in marks] == [
        ("price", "expensive (theme: price)"),
        ("support", "support (theme: support)"),
        ("support", "never answered (theme: support)"),
    ]
    tags = browser.find_elements(By.CSS_SELECTOR, "#comment-themes li")
    assert [tag.get_attribute("data-theme") for tag in tags] == case["themes"]
    assert {"price", "support"} <= set(case["themes"])
    link = tags[0].find_element(By.TAG_NAME, "a").get_attribute("href") or ""
    assert link.endswith(f"/cases?theme={case['themes'][0]}")

    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".score").text for r in rows] == ["3", "10"]
    assert rows[0].get_attribute("class") == "this-case"
    assert "(this case)" in rows[0].text
    assert "(Asia/Tokyo, UTC+09:00)" in browser.find_element(By.ID, "customer-local-time").text
    attributes = browser.find_elements(By.CSS_SELECTOR, "#customer-attributes li")
    assert [a.text for a in attributes] == ["plan: pro", "region: apac"]

    # Nobody reached the customer yet: the reminder is next, the escalations later.
    ladder = browser.find_elements(By.CSS_SELECTOR, "#ladder tbody tr")
    assert [(r.get_attribute("data-step"), r.get_attribute("data-state")) for r in ladder] == [
        ("reminder", "next"),
        ("escalation", "later"),
        ("second_level", "later"),
    ]
    assert "cs-lead@example.com (team lead)" in ladder[1].text
    assert "head-of-cx@example.com (second level)" in ladder[2].text

    # Reaching the customer stops what was still to come.
    Select(browser.find_element(By.ID, "contact-outcome")).select_by_value("reached")
    _submit(browser, "form-contact")
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "done"), "contact is logged"))
    states = [
        r.get_attribute("data-state")
        for r in browser.find_elements(By.CSS_SELECTOR, "#ladder tbody tr")
    ]
    assert states == ["stopped", "stopped", "stopped"]


def _cells(driver: WebDriver, table: str, key: str) -> dict[str, str]:
    """The cells of each row of `table`, by the row's `data-<key>`."""
    return {
        row.get_attribute(f"data-{key}") or "": row.text
        for row in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    }


def _comparison(driver: WebDriver) -> dict[str, tuple[str, str, str]]:
    """Each figure's (previous, this period, change) on the dashboard."""
    return {
        row.get_attribute("data-figure") or "": (
            row.find_element(By.CSS_SELECTOR, ".before").text,
            row.find_element(By.CSS_SELECTOR, ".after").text,
            row.find_element(By.CSS_SELECTOR, ".change").text,
        )
        for row in driver.find_elements(By.CSS_SELECTOR, "#comparison tbody tr")
    }


def test_the_dashboard_compares_this_week_with_the_week_before(
    system: System, browser: WebDriver
) -> None:
    path = "/dashboard?days=7&team=customer-success"
    _sign_in(browser, system, LEAD, path=path)
    before = _comparison(browser)
    owners_before = _cells(browser, "owner-figures", "owner")

    # A promoter this week and a detractor eight days ago (last week: older than the policy's
    # `act_on_responses_within`, so no case), then a detractor this week, whose case opens.
    now = datetime.now(UTC)
    _answer(system, f"week-{uuid.uuid4().hex[:8]}", 9, now - timedelta(hours=1))
    _answer(system, f"week-{uuid.uuid4().hex[:8]}", 1, now - timedelta(days=8))
    detractor = f"week-{uuid.uuid4().hex[:8]}"
    _answer(system, detractor, 2, now - timedelta(hours=1))
    owner = _open_case_of(system, detractor)["owner"]

    def reloaded() -> dict[str, tuple[str, str, str]]:
        browser.get(f"{system.url('console')}{path}")
        return _comparison(browser)

    def moved(found: dict[str, tuple[str, str, str]]) -> bool:
        # Both answers scored (each moves its own cell), not just the first to arrive.
        return (
            found["promoters"][1] != before["promoters"][1]
            and found["detractors"][0] != before["detractors"][0]
        )

    after = eventually_sync(reloaded, until=moved, what="the two answers on the dashboard")
    assert int(after["promoters"][1]) == int(before["promoters"][1]) + 1
    assert int(after["detractors"][0]) == int(before["detractors"][0]) + 1
    for figure, (previous, this, change) in after.items():
        if figure == "nps":
            assert float(change) == pytest.approx(float(this) - float(previous), abs=0.11)
        else:
            assert int(change) == int(this) - int(previous)
    assert browser.find_element(By.ID, "significance").text.startswith(("The change", "Too few"))
    # The detractor's case counts for its owner, in this period and its team.
    handled = _cells(browser, "owner-figures", "owner")
    was = int(owners_before[owner].split()[1]) if owner in owners_before else 0
    assert int(handled[owner].split()[1]) == was + 1
    assert "@example.com" not in browser.find_element(By.ID, "comparison").text


def test_the_dashboard_narrows_to_one_survey_with_its_times_to_contact(
    system: System, browser: WebDriver
) -> None:
    survey = f"loop-{uuid.uuid4().hex[:8]}"  # a survey no other answer of the system has
    customer = f"loop-{uuid.uuid4().hex[:8]}"
    _answer(system, customer, 2, datetime.now(UTC) - timedelta(minutes=10), survey=survey)
    case = _open_case_of(system, customer)
    contacted = httpx.post(
        f"{system.url('followup')}/v1/cases/{case['case_id']}/contacts",
        json={"channel": "phone", "outcome": "reached"},
        headers=system.infra.bearer(LEAD),
        timeout=10,
    )
    assert contacted.status_code == 200, contacted.text

    _sign_in(browser, system, LEAD, path=f"/dashboard?days=7&survey={survey}")
    # NPS (scoring) and the cases (followup) of that survey only: one detractor, one case.
    assert _comparison(browser)["detractors"][1] == "1"
    assert _comparison(browser)["responses"][1] == "1"
    [row] = browser.find_elements(By.CSS_SELECTOR, "#team-figures tbody tr")
    assert row.get_attribute("data-team") == case["team"]
    first_contact = row.find_element(By.CSS_SELECTOR, ".first-contact").text
    median, p90 = first_contact.split(" / ")
    assert median == p90, first_contact  # one case: its time is the median and the p90
    assert median.endswith(" min"), first_contact  # contacted moments after the case opened
    assert row.find_element(By.CSS_SELECTOR, ".resolution").text == "— / —"  # not resolved
    assert row.find_element(By.CSS_SELECTOR, ".closed-loop").text == "0%"
    assert row.find_element(By.CSS_SELECTOR, ".recovery").text == "—"  # no later answer
    [owner] = browser.find_elements(By.CSS_SELECTOR, "#owner-figures tbody tr")
    assert owner.find_element(By.CSS_SELECTOR, ".first-contact").text == first_contact

    # Two of scoring's dimensions at once, or an attribute not written key:value: a clear 422.
    for query, reason in (
        (f"survey={survey}&source=api", "one of source, survey and customer attribute"),
        ("attribute=Plan", "written key:value"),
    ):
        browser.get(f"{system.url('console')}/dashboard?{query}")
        assert reason in browser.find_element(By.ID, "error-detail").text


def test_the_policy_page_is_a_table_of_the_rules_in_force(
    system: System, browser: WebDriver
) -> None:
    policy = parse_policy(Path(__file__).with_name("policy.yaml").read_text())
    _sign_in(browser, system, VIEWER, path="/policy")
    rows = {
        row.get_attribute("data-rule"): row
        for row in browser.find_elements(By.CSS_SELECTOR, "#rules tbody tr")
    }
    assert list(rows) == [r.name for r in policy.rules]
    detractor = rows["detractor"]
    assert detractor.find_element(By.CSS_SELECTOR, ".deadline").text == "2 business days"
    assert detractor.find_element(By.CSS_SELECTOR, ".owner").text.startswith("customer-success")
    steps = [li.text for li in detractor.find_elements(By.CSS_SELECTOR, ".ladder li")]
    assert steps == [
        "4 business hours before the deadline: tell the owner",
        "at the deadline: tell the team lead",
        "1 business day after the deadline: tell the second level",
    ]
    messages = detractor.find_element(By.CSS_SELECTOR, ".messages").text
    assert "Email detractor_acknowledgement, at once" in messages
    assert "Helpdesk ticket, high priority, at once" in messages
    assert (
        "1 day after the answer" in rows["passive"].find_element(By.CSS_SELECTOR, ".messages").text
    )
    assert "to survey e2e-breach" in rows["detractor-breach-drill"].text
    assert rows["passive"].find_element(By.CSS_SELECTOR, ".deadline").text == (
        "No case: messages only"
    )


def test_a_viewer_reads_the_impact_page_and_a_small_group_is_never_shown_as_proof(
    system: System, browser: WebDriver
) -> None:
    survey = f"impact-{uuid.uuid4().hex[:8]}"  # a survey no other answer of the system has
    customer = f"impact-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    _answer(system, customer, 2, now - timedelta(minutes=20), survey=survey)
    _answer(system, customer, 9, now - timedelta(minutes=5), survey=survey)
    _sign_in(browser, system, VIEWER, path="/dashboard")
    browser.find_element(By.LINK_TEXT, "Impact").click()
    _wait(browser).until(ec.presence_of_element_located((By.ID, "impact-filters")))

    def reloaded() -> list[tuple[str, str, str]]:
        browser.get(f"{system.url('console')}/impact?days=90&survey={survey}")
        return [
            (
                row.get_attribute("data-segment") or "",
                row.get_attribute("data-conclusive") or "",
                row.find_element(By.CSS_SELECTOR, ".number").text,
            )
            for row in browser.find_elements(By.CSS_SELECTOR, "#impact-groups tbody tr")
        ]

    groups = eventually_sync(reloaded, until=bool, what="the customer's two answers as a pair")
    # One customer, detractor then promoter: one pair, in a detractor group, and far too few
    # customers to be shown as proof.
    assert groups == [("detractor", "no", "1")], groups
    assert "@example.com" not in browser.find_element(By.TAG_NAME, "main").text
