"""labkit's REST API as a Jupyter server extension (``jupyter server`` loads it; docs/api.md)."""
from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import LabkitAPI
    return [{"module": "labkit_api.app", "app": LabkitAPI}]
