"""``?limit=&offset=`` pages: ``{"items", "total", "limit", "offset", "next"}`` for every listing."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from labkit import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def window(self, items: Sequence[T]) -> Sequence[T]:
        return items[self.offset:self.offset + self.limit]


def _integer(name: str, text: str | None, default: int, low: int, high: int | None) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{name} must be {bounds} (got {value})")
    return value


def parse(limit: str | None, offset: str | None) -> Page:
    """Read the query's limit and offset, refusing values that are not whole numbers in range."""
    return Page(_integer("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT), _integer("offset", offset, 0, 0, None))


def page(items: Sequence[T], window: Page, path: str, query: dict[str, str],
         render: Callable[[T], Any]) -> dict[str, Any]:
    """One page of ``items``, each rendered; ``next`` is the address of the following page or null."""
    return page_of(window.window(items), len(items), window, path, query, render)


def page_of(shown: Sequence[T], total: int, window: Page, path: str, query: dict[str, str],
            render: Callable[[T], Any]) -> dict[str, Any]:
    """A page whose items were already selected (by the database) out of ``total``."""
    following = window.offset + window.limit
    next_url = None
    if following < total:
        next_url = path + "?" + urlencode({**query, "limit": window.limit, "offset": following})
    return {"items": [render(item) for item in shown], "total": total, "limit": window.limit,
            "offset": window.offset, "next": next_url}
