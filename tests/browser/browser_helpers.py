"""Helpers of the browser tests (their fixtures are in this folder's conftest.py)."""
from __future__ import annotations

from pathlib import Path

from labkit.dashboards.serve import DashboardServer

CHROMIUM = Path("/usr/bin/chromium")
PAGE_TIMEOUT = 90_000  # ms: a page kernel may need to start on a busy 2-core machine


def open_page(page: object, server: DashboardServer, url: str) -> None:
    """Load a dashboard and wait until its widgets are drawn (the navigation bar is one of them)."""
    page.goto(server.page_url(url), wait_until="commit", timeout=PAGE_TIMEOUT)
    page.wait_for_selector(".lk-nav", timeout=PAGE_TIMEOUT)
