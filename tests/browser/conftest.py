"""What the browser tests share: Debian's Chromium driven by Playwright (never a downloaded browser),
one browser per test module and a fresh tab, with its own cookie jar, per test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_helpers import CHROMIUM, PAGE_TIMEOUT
from playwright import sync_api


@pytest.fixture(scope="module", autouse=True)
def chromium_installed() -> None:
    """Never skipped: without the browser these tests fail and say how to install it."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed at /usr/bin/chromium: run bash scripts/install.sh --test")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT)
    try:
        yield tab
    finally:
        context.close()
