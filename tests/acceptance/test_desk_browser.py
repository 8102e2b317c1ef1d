"""The review desk in a real browser: Debian's Chromium, driven by Selenium through
Debian's chromium-driver (both installed by scripts/setup), against a real
``docinbox run`` — opened at the URL ``docinbox dashboard --print-url`` prints, as a user
would open it.

A receipt dropped into the inbox appears without a reload, is opened, its ``total``
corrected from 45.99 to 46.99 and approved: the mock's journal then holds UpdateFile and
ApproveFile, and ``result.json`` the corrected value.  A PDF printed by Chromium itself
(a real PDF, Skia's) is found by a word of its text; the export is downloaded and read.

With ``DOCINBOX_SCREENSHOTS=DIR`` the test leaves the README's pictures of the desk in
DIR (``DOCINBOX_SCREENSHOTS=docs/images .venv/bin/python -m pytest
tests/acceptance/test_desk_browser.py``).
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from openpyxl import load_workbook
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.acceptance.conftest import Workspace, receipt, wait_for

T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: What Chromium needs here (root, no GPU, no network of its own), and a fresh profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)
MINERU_ROUTE = '[[routes]]\nfolder  = "informes/**"\nservice = "mineru"\n\n'


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def until(
    driver: WebDriver, condition: Callable[[WebDriver], T], what: str, timeout: float = 30
) -> T:
    """*condition* truthy within *timeout* seconds (an element gone stale: look again)."""

    def check(d: WebDriver) -> Any:
        try:
            return condition(d)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(check, f"waiting for {what}")


def rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "tr.doc")


def row_named(name: str, state: str = "done") -> Callable[[WebDriver], WebElement | None]:
    def find(driver: WebDriver) -> WebElement | None:
        for row in rows(driver):
            if row.get_attribute("data-state") == state and name in row.text:
                return row
        return None

    return find


def click_in(
    find: Callable[[WebDriver], WebElement | None], selector: str
) -> Callable[[WebDriver], bool]:
    """A condition for :func:`until`: click *selector* in what *find* finds now."""

    def click(driver: WebDriver) -> bool:
        found = find(driver)
        if found is None:
            return False
        found.find_element(By.CSS_SELECTOR, selector).click()
        return True

    return click


def shoot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("DOCINBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def chromium_pdf(driver: WebDriver, html: str) -> bytes:
    """A PDF printed by Chromium (Skia/PDF): a real one, with embedded fonts."""
    driver.get("data:text/html;charset=utf-8," + html)
    return base64.b64decode(driver.execute_cdp_cmd("Page.printToPDF", {})["data"])


def test_a_receipt_is_seen_corrected_approved_searched_and_exported(
    workspace: Workspace, browser: WebDriver, tmp_path: Path
) -> None:
    workspace.set_key("review", "min_score", "0.93")  # the receipt's total (0.92) needs review
    workspace.edit_config(
        lambda text: text.replace("[[routes]]\n", MINERU_ROUTE + "[[routes]]\n", 1)
    )
    report = chromium_pdf(
        browser,
        "<h1>Informe de mantenimiento</h1><p>La caldera fue revisada por Zacarías.</p>",
    )
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    printed = workspace.docinbox("dashboard", "--print-url")
    assert printed.returncode == 0, printed.stderr
    browser.get(printed.stdout.strip())
    until(
        browser,
        lambda d: d.find_element(By.ID, "view").get_attribute("data-view") == "now",
        "the desk",
    )
    assert "token" not in browser.current_url  # the key went into a cookie
    browser.execute_script("window.notReloaded = true;")

    # a dropped receipt appears on its own
    workspace.drop("recibo.pdf", receipt())
    row = until(browser, row_named("recibo.pdf"), "recibo.pdf done on the Now view")
    assert browser.execute_script("return window.notReloaded === true;")
    assert "to review" in row.text
    until(browser, lambda d: d.find_element(By.ID, "count-review").text == "1", "the review count")
    shoot(browser, "desk-now.png")

    # opened, corrected, approved
    # The Now view is live: the row found a moment ago may have been drawn again since.
    until(browser, click_in(row_named("recibo.pdf"), "a.doc-link"), "recibo.pdf opened")
    total = until(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "input.field-input[data-label='total']"),
        "the total's field",
    )
    flagged = browser.find_elements(By.CSS_SELECTOR, "tr.needs-review input.field-input")
    assert [i.get_attribute("data-label") for i in flagged] == ["total"]
    until(browser, lambda d: d.execute_script(
        "const i = document.querySelector('img.page'); return i && i.complete && i.naturalWidth;"
    ), "the page's picture")  # fmt: skip
    assert total.get_attribute("value") == "45.99"
    total.clear()
    total.send_keys("46.99")
    shoot(browser, "desk-review.png")
    browser.find_element(By.ID, "approve").click()
    state = until(
        browser,
        lambda d: (e := d.find_element(By.ID, "approval-state")).text.startswith("Approved") and e,
        "the approval",
    )
    assert "Approved by dashboard" in state.text and "sent to nanonets" in state.text

    journal = [f"{r['method']} {r['path']}" for r in daemon.mock().requests()]
    calls = [c.split("/")[-3] for c in journal if "/UpdateFile/" in c or "/ApproveFile/" in c]
    assert calls == ["UpdateFile", "ApproveFile"]
    result = workspace.result("recibo")
    assert {f["label"]: f["text"] for f in result["fields"]}["total"] == "46.99"
    assert result["review"]["state"] == "approved"

    # a word of a real PDF, found
    workspace.drop("informes/informe.pdf", report)
    wait_for(
        lambda: any(d["name"] == "informe.pdf" and d["state"] == "done"
                    for d in workspace.status()["documents"]),
        90,
        "informe.pdf done",
    )  # fmt: skip
    search = browser.find_element(By.ID, "search-q")
    search.clear()
    search.send_keys("zacarias", Keys.ENTER)
    hit = until(browser, row_named("informe.pdf"), "informe.pdf among the results")
    assert hit.find_element(By.CSS_SELECTOR, ".snippet mark").text.lower() == "zacarías"
    assert len(rows(browser)) == 1
    shoot(browser, "desk-search.png")

    # the export, downloaded and read back
    browser.execute_script("location.hash = 'export';")
    link = until(browser, lambda d: d.find_element(By.ID, "export-download"), "the export link")
    assert "format=xlsx" in (link.get_attribute("href") or "")
    link.click()
    downloads = tmp_path / "downloads"
    book_path = wait_for(
        lambda: next((p for p in downloads.glob("*.xlsx") if p.stat().st_size), None),
        30,
        "the downloaded workbook",
    )
    sheet = [list(r) for r in load_workbook(book_path)["Documents"].iter_rows(values_only=True)]
    header, values = sheet[0], {r[0]: r for r in sheet[1:]}
    assert values["recibo.pdf"][header.index("total")] == 46.99
    assert values["recibo.pdf"][header.index("review")] == "approved"
    assert values["informe.pdf"][header.index("service")] == "mineru"
    assert daemon.stop() == 0
    assert daemon.problems() == []


def test_another_page_cannot_make_the_desk_act(workspace: Workspace, browser: WebDriver) -> None:
    """Without the key the desk shows nothing; a page of another origin on the same
    machine — which the browser sends the desk's cookie along with — cannot make it
    act: it has no CSRF token."""
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    workspace.drop("roto.pdf", b"%PDF-1.4\n%%EOF\n")
    wait_for(lambda: workspace.counts().get("failed") == 1, 30, "roto.pdf failed")
    url = workspace.docinbox("dashboard", "--print-url").stdout.strip()
    desk = url.split("?")[0]
    browser.get(desk)
    assert "open the address" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(url)  # the user opens the desk: the cookie is set
    until(browser, lambda d: d.find_element(By.ID, "view").get_attribute("data-view"), "the desk")
    browser.get(daemon.mock_url + "/__admin/tasks")  # another origin (another port)
    job_id = workspace.status()["documents"][0]["id"]
    outcomes = browser.execute_async_script(
        """
        const [desk, id, done] = arguments;
        const url = `${desk}api/documents/${id}/dismiss`;
        Promise.all([
          fetch(url, {method: "POST", mode: "no-cors", credentials: "include"})
            .then(r => r.type, e => "error"),
          fetch(url, {method: "POST", credentials: "include", headers: {"X-CSRF-Token": "x"}})
            .then(r => r.status, e => "blocked"),
        ]).then(done);
        """,
        desk,
        job_id,
    )
    # the first is sent (with the cookie) and its answer unreadable (CORP); the second
    # never leaves the browser (its preflight is refused)
    assert outcomes == ["error", "blocked"]
    assert workspace.counts() == {"failed": 1}  # not dismissed: no CSRF token
    assert daemon.stop() == 0
    assert [p for p in daemon.problems() if "roto.pdf: failed" not in p] == []
