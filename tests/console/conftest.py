"""The browser fixture of the console's tests (tests/console, and the OIDC login test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.console.browser import Browser, missing_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Debian Chromium for the module. Missing: the test fails under CI, is skipped elsewhere."""
    why = missing_browser()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    b = Browser()
    try:
        yield b
    finally:
        b.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """After each test's body (passed or failed): a screenshot of what the browser showed, named after it."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call":
        return
    b = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if isinstance(b, Browser):
        try:
            b.screenshot(f"{item.name}{'' if report.passed else '-FAILED'}")
            if report.passed:  # a picture of an earlier failure would mislead
                b.forget_screenshot(f"{item.name}-FAILED")
        except Exception as exc:  # noqa: BLE001 - a dead browser must not hide the test's own failure
            item.add_report_section("call", "screenshot", f"no screenshot: {exc!r}")
