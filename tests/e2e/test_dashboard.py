"""The web dashboard in a real headless browser, served by a real daemon.

Debian's ``/usr/bin/chromium`` driven through ``/usr/bin/chromedriver`` (selenium, with both
paths given, so nothing is downloaded). Without them the test FAILS, it never skips: a dashboard
nobody ever loads in a browser is untested. ``.ci/run`` installs them with apt when absent.

The daemon is ``tests/daemon/serving.py``'s (local exchange simulator, ``open_supervisor``,
``run_http_server``) in this test's Trio loop; the browser runs in a worker thread (selenium is
blocking) while the loop serves the page it polls. Real clock: the browser is a real peer.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from supervisor.config import BotConfig
from tests.daemon.serving import EXCHANGE, SYMBOL, TOKEN, TOKEN_ENV, serving_system

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
BOT = "watcher"
WAIT_S = 15.0  # generous for a loaded CI machine; a passing run takes a few seconds

# Pixels of the price line's colour (--price: #5aa9ff) on the chart's canvas.
PRICE_PIXELS_JS = """
const canvas = document.getElementById("chart");
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let count = 0;
for (let i = 0; i < data.length; i += 4) {
  if (Math.abs(data[i] - 90) < 30 && Math.abs(data[i + 1] - 169) < 30 && data[i + 2] > 220) {
    count++;
  }
}
return count;
"""


def watcher() -> BotConfig:
    """Subscribes and follows the price, never trades (buys only under 1)."""
    return BotConfig(
        id=BOT,
        exchange=EXCHANGE,
        symbol=SYMBOL,
        strategy="threshold",
        params={"buy_below": Decimal("1")},
    )


def open_browser() -> WebDriver:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: the dashboard test needs them ({INSTALL})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def _cell(driver: WebDriver, field: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, f'tr[data-bot="{BOT}"] [data-field="{field}"]')


def drive_dashboard(url: str, screenshot: Path) -> dict[str, Any]:
    """Load the page, see a tick arrive, pause the bot through the UI. Blocking (a worker
    thread); returns what the page showed. Saves a screenshot whatever happens."""
    driver = open_browser()
    seen: dict[str, Any] = {}
    try:
        wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.1)
        driver.get(url)
        assert driver.title == "BotCriptoFy"

        # A tick arrives: the price shows, then changes (the page polls every second).
        wait.until(lambda d: _cell(d, "last_price").text not in ("", "–"))
        seen["first_price"] = _cell(driver, "last_price").text
        wait.until(lambda d: _cell(d, "last_price").text != seen["first_price"])
        seen["next_price"] = _cell(driver, "last_price").text
        exchange = driver.find_element(By.CSS_SELECTOR, '#exchanges tr[data-key="sim"]')
        seen["exchange"] = exchange.text
        wait.until(lambda d: d.execute_script(PRICE_PIXELS_JS) > 50)  # the chart drew it
        seen["state_before"] = _cell(driver, "state").text

        pause = driver.find_element(
            By.CSS_SELECTOR, f'tr[data-bot="{BOT}"] button[data-action="pause"]'
        )
        token = driver.find_element(By.ID, "token")
        token.send_keys("not-the-token")
        pause.click()
        wait.until(lambda d: "refused" in d.find_element(By.ID, "message").text)
        seen["refused"] = driver.find_element(By.ID, "message").text

        token.clear()
        token.send_keys(TOKEN)
        pause.click()
        wait.until(lambda d: _cell(d, "state").text == "paused")
        seen["message"] = driver.find_element(By.ID, "message").text
        seen["resume_enabled"] = driver.find_element(
            By.CSS_SELECTOR, f'tr[data-bot="{BOT}"] button[data-action="resume"]'
        ).is_enabled()
        seen["stored"] = driver.execute_script(
            "return [localStorage.length, sessionStorage.length, document.cookie]"
        )
        # Script errors and CSP violations land in the console; the refused pause's 401 too.
        seen["console_errors"] = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "401" not in entry["message"]
        ]
        return seen
    finally:
        driver.save_screenshot(str(screenshot))
        driver.quit()


async def test_dashboard_shows_ticks_and_pauses_a_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never fetch a browser or driver
    with trio.fail_after(60):
        async with serving_system(tmp_path / "journal.sqlite3", bots=(watcher(),)) as served:
            seen = await trio.to_thread.run_sync(
                drive_dashboard, served.url + "/", tmp_path / "dashboard.png"
            )
            async with httpx.AsyncClient(base_url=served.url) as client:
                health = (await client.get("/health")).json()
    assert seen["first_price"] != seen["next_price"]
    assert Decimal(seen["next_price"].replace(",", "")) > 0
    assert "streaming" in seen["exchange"]
    assert seen["state_before"] == "running"
    assert "pause watcher refused: HTTP 401" in seen["refused"]
    assert seen["message"] == "pause watcher: paused"
    assert seen["resume_enabled"] is True
    assert seen["stored"] == [0, 0, ""]  # the token lives in the page's memory only
    assert seen["console_errors"] == []
    assert health["bots"][BOT]["state"] == "paused"
