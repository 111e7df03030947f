"""Debian's Chromium driven by Selenium (PyPI), for the console's browser tests: no browser download.

``Browser`` wraps one headless Chromium session with what the tests need: waiting for elements by the
console's ``data-testid`` hooks, the browser's console log (CSP violations, JS errors), and screenshots
saved under tests/output/console/ (and, with MEAO_CONSOLE_SCREENSHOTS=DIR, the README's pictures).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = ROOT / "tests" / "output" / "console"
# Selenium Manager must download nothing: the browser and the driver are Debian's
os.environ["SE_OFFLINE"] = "true"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing; `bash tests/run.sh` installs Debian's chromium and chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


def hook(value: str) -> str:
    """The CSS selector of a ``data-testid`` (quoted: ids hold dots and other punctuation)."""
    return '[data-testid="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"]'


class Browser:
    """One headless Chromium session."""

    def __init__(self, width: int = 1600, height: int = 1000) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(30)
        self.logs: list[dict[str, Any]] = []

    def quit(self) -> None:
        self.driver.quit()

    # ---------------------------------------------------------------- finding things
    def wait(self, predicate: Callable[[Any], Any], timeout: float = 20, what: str = "") -> Any:
        """Poll ``predicate`` until it is truthy. The page re-renders on every refresh, so an element read a
        moment ago may be gone: a stale element makes the predicate run again, not fail."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(predicate)
        except TimeoutException as exc:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; "
                                 f"browser log: {self.console_log()[-10:]}") from exc

    def find(self, selector: str, within: Any = None) -> Any:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str, within: Any = None) -> list[Any]:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def by_testid(self, value: str, timeout: float = 20, visible: bool = True) -> Any:
        """The element with ``data-testid=value`` once it is there (and shown)."""
        def found(driver: Any) -> Any:
            els = self.find_all(hook(value))
            return next((el for el in els if not visible or el.is_displayed()), None)

        return self.wait(found, timeout, f"data-testid={value}")

    def gone(self, value: str, timeout: float = 20) -> None:
        self.wait(lambda d: not [el for el in self.find_all(hook(value)) if el.is_displayed()], timeout,
                  f"data-testid={value} to go away")

    def text_of(self, value: str, within: str | None = None, timeout: float = 20) -> str:
        """The shown text of ``data-testid=value`` (inside ``data-testid=within``), read from a live node."""
        selector = f"{hook(within)} {hook(value)}" if within else hook(value)

        def read(driver: Any) -> str | None:
            shown = [el for el in self.find_all(selector) if el.is_displayed()]
            return shown[0].text if shown else None

        return self.wait(read, timeout, selector)

    def wait_text(self, value: str, check: Callable[[str], bool], within: str | None = None,
                  timeout: float = 30, what: str = "") -> str:
        """Wait until the text of ``value`` (inside ``within``) passes ``check``; that text."""
        selector = f"{hook(within)} {hook(value)}" if within else hook(value)

        def read(driver: Any) -> str | None:
            shown = [el for el in self.find_all(selector) if el.is_displayed()]
            return shown[0].text if shown and check(shown[0].text) else None

        return self.wait(read, timeout, what or selector)

    def click(self, value: str, within: str | None = None, timeout: float = 20) -> None:
        """Click ``data-testid=value`` (inside ``within``), finding it again if a refresh replaced it."""
        selector = f"{hook(within)} {hook(value)}" if within else hook(value)

        def press(driver: Any) -> bool:
            shown = [el for el in self.find_all(selector) if el.is_displayed()]
            if not shown:
                return False
            shown[0].click()
            return True

        self.wait(press, timeout, f"{selector} to click")

    # ---------------------------------------------------------------- the console's log and pictures
    def console_log(self) -> list[dict[str, Any]]:
        """Everything the page logged so far (kept across calls: reading the log empties it)."""
        self.logs.extend(self.driver.get_log("browser"))
        return self.logs

    def errors(self) -> list[str]:
        """Severe log lines: JS exceptions, failed loads, CSP violations."""
        return [entry["message"] for entry in self.console_log() if entry.get("level") == "SEVERE"]

    def screenshot(self, name: str) -> Path:
        """Save what the browser shows under tests/output/console/; also into MEAO_CONSOLE_SCREENSHOTS."""
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def forget_screenshot(self, name: str) -> None:
        (OUTPUT / f"{name}.png").unlink(missing_ok=True)

    def readme_picture(self, name: str) -> None:
        """With MEAO_CONSOLE_SCREENSHOTS=DIR, also save this view as DIR/NAME.png (the README's pictures)."""
        folder = os.environ.get("MEAO_CONSOLE_SCREENSHOTS")
        if folder:
            # the pictures show the page, not the last action's message
            self.driver.execute_script("document.querySelectorAll('[data-testid=\"toast\"]').forEach((t) => t.remove())")
            target = Path(folder) if Path(folder).is_absolute() else ROOT / folder
            target.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(target / f"{name}.png"))


