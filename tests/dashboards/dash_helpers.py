"""Helpers for the dashboard tests: what a visitor's browser would send, built in Python."""
from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Callable
from typing import Any

DEMO_MODELS = ("hodgkin_huxley_1952", "noble_1962", "beeler_reuter_1977")


def uploaded(name: str, content: bytes) -> tuple[dict[str, Any], ...]:
    """The value an ipywidgets 8 FileUpload holds after a visitor picked one file."""
    return ({"name": name, "type": "application/octet-stream", "size": len(content),
             "content": memoryview(content), "last_modified": dt.datetime.now(dt.timezone.utc)},)


def text(markup: str) -> str:
    """What a person reads in an HTML widget."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def eventually(condition: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    """Wait for something a background thread (the page's poller, a worker) makes true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout:g} s")


def dataset_csv() -> bytes:
    """A data set for the tests' small protocol: its 'doubled' output against 'time', plus a scalar."""
    rows = "\n".join(f"{t},{2 * t + 0.5},{8.5}" for t in range(5))
    return f"time (ms),doubled (mV),peak (mV)\n{rows}\n".encode()
