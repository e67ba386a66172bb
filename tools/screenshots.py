"""The console's screenshots in docs/ (the README's "Working a case"), taken again.

Against a running dev stack (`make up`): posts eight answers through ingest (six detractors
whose comments name a theme or two, a passive and a promoter; new customers each run) and two
a week over the four months before (for the chart and the comparison), waits
until followup has opened their cases, then signs in as the lead through the dev identity
provider in headless Chromium (`make browser`) and saves, 1280 pixels wide, the whole page of:

- docs/console-queue.png      the queue (`/cases`);
- docs/console-case.png       the newest detractor's case page (its comment's theme words marked);
- docs/console-dashboard.png  the dashboard (`/dashboard`, the last 30 days);
- docs/console-policy.png     the policy page.

    make up
    .venv/bin/python tools/screenshots.py

With the dev stack's ports moved (`NPSLOOP_*_PORT`), pass the same environment and the URLs:
`--console http://127.0.0.1:8700 --ingest http://127.0.0.1:8701 --followup …`.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

DOCS = Path(__file__).resolve().parents[1] / "docs"
LEAD = "cs-lead@example.com"
WIDTH = 1280

#: (score, comment, name, time zone): oldest first, so the last detractor is the newest case.
ANSWERS = [
    (9, "Great product, the new reports save me hours", "Noah Fischer", "Europe/Berlin"),
    (7, "Fine overall, the mobile app could be faster", "Mia Rossi", "Europe/Rome"),
    (4, "Onboarding was confusing and nobody explained the setup", "Liam Walsh", "Europe/Dublin"),
    (2, "The app is slow and crashes when I export", "Sofia Costa", "Europe/Lisbon"),
    (5, "Way too expensive for what it does, the last invoice doubled", "Ethan Brown", "UTC"),
    (
        3,
        "Delivery was late twice and nobody from support called back",
        "Chloé Martin",
        "Europe/Paris",
    ),
    (1, "Billing charged me twice and support never answered", "Hiro Tanaka", "Asia/Tokyo"),
    (
        2,
        "Way too expensive, and support never answered my emails about the refund",
        "Ada Lovelace",
        "America/New_York",
    ),
]


def _token(person: str) -> str:
    """A dev access token, as `make -s token USER=…` prints it (same NPSLOOP_* environment)."""
    return subprocess.run(  # noqa: S603 - our own module, with arguments of this file
        [sys.executable, "-m", "nps_kit.devstack", "token", "--user", person],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    ).stdout.strip()


def seed(ingest: str, followup: str, ingest_token: str) -> str:
    """The answers through ingest; the newest detractor's case id once followup opened it."""
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)
    newest = ""
    for i, (score, comment, name, zone) in enumerate(ANSWERS):
        customer = f"shot-{run}-{i}"
        newest = customer
        answer = httpx.post(
            f"{ingest}/v1/responses",
            json={
                "response_id": f"shot-{run}-{i}",
                "survey_id": "relationship-q4",
                "score": score,
                "comment": comment,
                "responded_at": (now - timedelta(minutes=5 * (len(ANSWERS) - i))).isoformat(),
                "customer": {
                    "id": customer,
                    "email": f"{name.split()[0].lower()}@example.com",
                    "name": name,
                    "timezone": zone,
                    "attributes": {"plan": "pro" if i % 2 else "team", "region": "emea"},
                },
            },
            headers={"Authorization": f"Bearer {ingest_token}"},
            timeout=10,
        )
        answer.raise_for_status()
    # Earlier answers, two a week over four months (no comment, no case for the old ones), so
    # that the chart has months and the comparison a previous period.
    for week in range(1, 18):
        for k, score in enumerate((10, 3 + week % 6)):
            httpx.post(
                f"{ingest}/v1/responses",
                json={
                    "response_id": f"shot-{run}-w{week}-{k}",
                    "survey_id": "relationship-q4",
                    "score": (score + week) % 11 if k else score - week % 3,
                    "responded_at": (now - timedelta(days=7 * week + k)).isoformat(),
                    "customer": {"id": f"shot-{run}-w{week}-{k}"},
                },
                headers={"Authorization": f"Bearer {ingest_token}"},
                timeout=10,
            ).raise_for_status()
    headers = {"Authorization": f"Bearer {_token(LEAD)}"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{followup}/v1/cases", params={"customer_id": newest}, headers=headers, timeout=10
        )
        found.raise_for_status()
        if items := found.json()["items"]:
            return str(items[0]["case_id"])
        time.sleep(0.5)  # a tool's poll of a running stack, with its deadline above
    raise SystemExit(f"followup opened no case for {newest} within 60 s: is the stack up?")


def browser() -> WebDriver:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        raise SystemExit("Chromium and chromedriver are needed: `make browser` installs them")
    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},900",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download
    return webdriver.Chrome(service=Service(driver_path), options=options)


def shoot(driver: WebDriver, url: str, name: str) -> None:
    driver.set_window_size(WIDTH, 400)  # short, so that the page's height is its content's
    driver.get(url)
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "signed-in-as")))
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, height)
    # The window's size counts the browser's own bars: grow it by what the page did not get.
    inner = int(driver.execute_script("return window.innerHeight"))
    driver.set_window_size(WIDTH, height + height - inner)
    path = DOCS / f"console-{name}.png"
    driver.save_screenshot(str(path))
    sys.stdout.write(f"{path} ({WIDTH} x {height} px)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--console", default="http://127.0.0.1:8000")
    parser.add_argument("--ingest", default="http://127.0.0.1:8001")
    parser.add_argument("--followup", default="http://127.0.0.1:8003")
    parser.add_argument("--ingest-token", default="dev-token")
    args = parser.parse_args()
    case_id = seed(args.ingest, args.followup, args.ingest_token)
    driver = browser()
    try:
        driver.get(f"{args.console}/cases")
        WebDriverWait(driver, 20).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, f'button[name="user"][value="{LEAD}"]'))
        ).click()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "signed-in-as")))
        shoot(driver, f"{args.console}/cases", "queue")
        shoot(driver, f"{args.console}/cases/{case_id}", "case")
        shoot(driver, f"{args.console}/dashboard", "dashboard")
        shoot(driver, f"{args.console}/policy", "policy")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
