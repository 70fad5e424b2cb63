"""The "My reports" page in headless Chromium, against the live server and a real worker.

A user signs in on the host's login page, requests a report with the form and
watches its bar move with rows, rate and time left, cancels another, downloads
the file and reads its rows; the server's validation errors appear at their
fields; axe-core finds no WCAG A/AA violation; the page fits a phone's width.
Set ``ASYNC_REPORTS_SCREENSHOTS`` to a folder to keep the screenshots there
(docs/images/ holds the ones docs/pages.md shows).
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import time
from pathlib import Path

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from django_async_reports.models import ScheduleExecution
from tests.browser import chromium
from tests.e2e.conftest import wait_for
from tests.factories import UserFactory
from tests.helpers import make_schedule

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def unthrottled(settings):
    settings.ASYNC_REPORTS = {**settings.ASYNC_REPORTS, "THROTTLE_RATES": {}}


@pytest.fixture
def frank(transactional_db):
    user = UserFactory(username="frank", email="frank@example.com")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(downloads) as driver:
        driver.downloads = downloads
        yield driver


def screenshot_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("ASYNC_REPORTS_SCREENSHOTS")
    return Path(wanted) if wanted else tmp_path


def sign_in(browser, live_server, user) -> None:

    browser.get(f"{live_server.url}/reports/")
    # Sent to the host's LOGIN_URL (DRF's login page here), then back.
    assert "/api-auth/login/" in browser.current_url
    browser.find_element(By.NAME, "username").send_keys(user.username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait_for(lambda: browser.current_url.endswith("/reports/"), message="the page after login")
    wait_for(
        lambda: browser.execute_script(
            "return document.querySelector('[data-ar-report-list]')"
            ".getAttribute('aria-busy') === 'false'"
        ),
        message="the list to load",
    )


def request_report(browser, report_type: str, title: str, **parameters) -> None:
    """Fill the form for ``report_type`` and send it; wait for its card."""

    Select(browser.find_element(By.ID, "ar-report-type")).select_by_value(report_type)
    fieldset = browser.find_element(By.CSS_SELECTOR, f'[data-ar-parameters="{report_type}"]')
    assert fieldset.is_displayed()
    for name, value in parameters.items():
        field = browser.find_element(By.ID, f"ar-p-{report_type}-{name}")
        field.clear()
        field.send_keys(str(value))
    title_input = browser.find_element(By.ID, "ar-title")
    title_input.clear()
    title_input.send_keys(title)
    browser.find_element(By.CSS_SELECTOR, "[data-ar-submit]").click()
    wait_for(lambda: card(browser, title), message=f"the card of {title!r}")


def card(browser, title: str):

    for element in browser.find_elements(By.CSS_SELECTOR, "li[data-ar-report]"):
        if element.find_element(By.CSS_SELECTOR, "[data-ar-slot=title]").text == title:
            return element
    return None


def card_state(browser, title: str) -> dict:
    return browser.execute_script(
        """
        const cards = [...document.querySelectorAll('li[data-ar-report]')];
        const el = cards.find(
          c => c.querySelector('[data-ar-slot=title]').textContent === arguments[0]);
        const bar = el.querySelector('[data-ar-bar]');
        const download = el.querySelector('[data-ar-download]');
        return {
          status: el.querySelector('[data-ar-slot=status]').textContent,
          value: Number(bar.getAttribute('aria-valuenow')),
          text: el.querySelector('[data-ar-slot=progress]').textContent,
          barShown: !el.querySelector('[data-ar-progress]').hidden,
          download: download.hidden ? null : download.href,
          cancelShown: !el.querySelector('[data-ar-cancel]').hidden,
          detail: el.querySelector('[data-ar-slot=detail]').textContent,
        };
        """,
        title,
    )


def test_request_watch_cancel_and_download_in_a_real_browser(
    worker, live_server, frank, browser, unthrottled, tmp_path
):

    make_schedule(frank, title="Monday numbers", frequency="weekly", weekday=0)
    sign_in(browser, live_server, frank)
    # Only the chosen type's parameters are shown.
    shown = [
        f.get_attribute("data-ar-parameters")
        for f in browser.find_elements(By.CSS_SELECTOR, "[data-ar-parameters]")
        if f.is_displayed()
    ]
    assert shown == [browser.find_element(By.ID, "ar-report-type").get_attribute("value")]
    # My schedules, server-rendered.
    schedules = browser.find_element(By.CSS_SELECTOR, ".ar-schedules").text
    assert "Monday numbers" in schedules and "Weekly on Monday at 08:00 (UTC)" in schedules

    # 1. Request a report; the bar moves, with rows, rate and time left.
    request_report(browser, "numbers", "Forty numbers", count=40, delay=0.1)
    seen: list[dict] = []

    def finished():
        state = card_state(browser, "Forty numbers")
        if state["barShown"]:
            seen.append(state)
        return state if state["status"] == "Completed" and state["download"] else None

    done = wait_for(finished, timeout=60, interval=0.1, message="the report to complete")
    moving = sorted({s["value"] for s in seen if 0 < s["value"] < 100})
    assert len(moving) >= 2, f"the bar did not move: {seen}"
    assert [s["value"] for s in seen] == sorted(s["value"] for s in seen), "the bar went back"
    rates = [s["text"] for s in seen if "rows/s" in s["text"]]
    assert rates, seen
    assert any(" of 40 rows" in text and " left" in text for text in rates), rates
    assert not done["barShown"] and not done["cancelShown"]

    # 2. Another, long one: cancel it from its card.
    request_report(browser, "numbers", "Too many numbers", count=2000, delay=0.05)
    wait_for(
        lambda: card_state(browser, "Too many numbers")["value"] > 0,
        timeout=30,
        message="the long report to start",
    )
    card(browser, "Too many numbers").find_element(By.CSS_SELECTOR, "[data-ar-cancel]").click()
    cancelled = wait_for(
        lambda: (s := card_state(browser, "Too many numbers"))["status"] == "Cancelled" and s,
        timeout=30,
        message="the report to be cancelled",
    )
    assert not cancelled["barShown"] and not cancelled["download"]
    announcer = browser.find_element(By.ID, "ar-announcer")
    wait_for(lambda: announcer.get_attribute("textContent") == "Report cancelled.")

    # 3. Download the first one by clicking its link, and read the file's rows.
    card(browser, "Forty numbers").find_element(By.CSS_SELECTOR, "[data-ar-download]").click()
    path = wait_for(
        lambda: [p for p in browser.downloads.iterdir() if not p.name.endswith(".crdownload")],
        timeout=20,
        message="the download",
    )[0]
    assert path.suffix == ".csv", path
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows == [["n", "square", "text"]] + [[str(n), str(n * n), ""] for n in range(1, 41)]

    # 4. Regenerate the cancelled one: a new card at the top, running.
    card(browser, "Too many numbers").find_element(By.CSS_SELECTOR, "[data-ar-regenerate]").click()
    wait_for(
        lambda: (
            len(
                [
                    c
                    for c in browser.find_elements(By.CSS_SELECTOR, "li[data-ar-report]")
                    if "Too many numbers" in c.text
                ]
            )
            == 2
        ),
        message="the regenerated report's card",
    )
    first = browser.find_element(By.CSS_SELECTOR, "li[data-ar-report]")
    assert "Too many numbers" in first.text
    first.find_element(By.CSS_SELECTOR, "[data-ar-cancel]").click()
    wait_for(lambda: "Cancelled" in first.text, timeout=30, message="the copy to be cancelled")

    # 5. After a reload the list comes from the server, the same as it was.
    browser.refresh()
    wait_for(lambda: card(browser, "Forty numbers"), message="the list after reload")
    assert card_state(browser, "Forty numbers")["download"]


def test_the_servers_validation_errors_appear_at_their_fields(
    worker, live_server, frank, browser, unthrottled
):

    sign_in(browser, live_server, frank)
    Select(browser.find_element(By.ID, "ar-report-type")).select_by_value("sales")
    end = browser.find_element(By.ID, "ar-p-sales-end_date")
    browser.execute_script("arguments[0].value = '2024-12-01'", end)
    # Sent with the keyboard: Enter in a field submits the form.
    end.send_keys(Keys.ENTER)
    start_error = browser.find_element(By.ID, "ar-p-sales-start_date-error")
    wait_for(lambda: start_error.is_displayed(), message="the start date's error")
    assert start_error.text == "This field is required."
    start = browser.find_element(By.ID, "ar-p-sales-start_date")
    assert start.get_attribute("aria-invalid") == "true"
    # Focus goes to the first field in error, which names its message.
    assert browser.switch_to.active_element == start
    assert "ar-p-sales-start_date-error" in start.get_attribute("aria-describedby")

    browser.execute_script("arguments[0].value = '2024-12-31'", start)
    browser.find_element(By.CSS_SELECTOR, "[data-ar-submit]").click()
    end_error = browser.find_element(By.ID, "ar-p-sales-end_date-error")
    wait_for(lambda: end_error.is_displayed(), message="the end date's error")
    assert end_error.text == "Must not be before start_date."
    assert not start_error.is_displayed()
    form_error = browser.find_element(By.ID, "ar-form-error")
    assert "please correct the fields" in form_error.text

    # A number past its bound: the browser lets it through, the server explains.
    Select(browser.find_element(By.ID, "ar-report-type")).select_by_value("numbers")
    count = browser.find_element(By.ID, "ar-p-numbers-count")
    count.clear()
    count.send_keys("9999999999")
    browser.find_element(By.CSS_SELECTOR, "[data-ar-submit]").click()
    count_error = browser.find_element(By.ID, "ar-p-numbers-count-error")
    wait_for(lambda: count_error.is_displayed(), message="the count's error")
    assert "less than or equal to 5000000" in count_error.text
    assert not browser.find_elements(By.CSS_SELECTOR, "li[data-ar-report]")


def save_full_page(browser, path: Path, width: int) -> None:
    """A screenshot of the whole page at ``width`` CSS pixels."""
    browser.set_window_size(width, 900)
    chrome = browser.execute_script("return window.outerHeight - window.innerHeight")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, height + chrome)
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    browser.save_screenshot(str(path))


def test_the_page_passes_axe_fits_a_phone_and_is_pictured(
    worker, live_server, frank, browser, unthrottled, tmp_path
):

    weekly = make_schedule(frank, title="Weekly numbers", frequency="weekly", weekday=0)
    ScheduleExecution.objects.create(
        schedule=weekly,
        due_at=weekly.next_run_at - datetime.timedelta(days=7),
        status=ScheduleExecution.Status.COMPLETED,
    )
    make_schedule(frank, title="Daily numbers")
    sign_in(browser, live_server, frank)
    # On a fresh page the first Tab stop is the skip link, which leads to the content.
    ActionChains(browser).send_keys(Keys.TAB).perform()
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content"
    skip.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "ar-main"

    request_report(browser, "numbers", "A quick one", count=5)
    wait_for(lambda: card_state(browser, "A quick one")["download"], timeout=30)
    request_report(browser, "numbers", "A slow one", count=600, delay=0.08)
    wait_for(lambda: card_state(browser, "A slow one")["value"] > 0, timeout=30)

    axe = Axe(browser)
    axe.inject()
    results = axe.run(
        options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21aa"]}}
    )
    assert results["violations"] == [], axe.report(results["violations"])

    # The pictures of docs/pages.md: the sales form, one report running, one done.
    Select(browser.find_element(By.ID, "ar-report-type")).select_by_value("sales")
    for name, value in (("start_date", "2026-11-01"), ("end_date", "2026-11-30")):
        field = browser.find_element(By.ID, f"ar-p-sales-{name}")
        browser.execute_script("arguments[0].value = arguments[1]", field, value)
    wait_for(lambda: "left" in card_state(browser, "A slow one")["text"], timeout=20)
    browser.execute_script("document.activeElement.blur()")
    shots = screenshot_dir(tmp_path)
    save_full_page(browser, shots / "my-reports-desktop.png", 1280)
    save_full_page(browser, shots / "my-reports-phone.png", 390)

    fits = browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    assert fits, "the page scrolls sideways at a phone's width"
    for button in browser.find_elements(By.CSS_SELECTOR, ".ar-button"):
        if button.is_displayed():
            assert button.size["height"] >= 44, button.text  # a finger-sized target
    assert (shots / "my-reports-phone.png").stat().st_size > 10_000
    card(browser, "A slow one").find_element(By.CSS_SELECTOR, "[data-ar-cancel]").click()
    wait_for(lambda: card_state(browser, "A slow one")["status"] == "Cancelled", timeout=30)
