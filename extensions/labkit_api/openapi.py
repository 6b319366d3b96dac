"""The OpenAPI document kept beside this module (openapi.yaml), served as JSON or YAML with the
server's own address of the API (it differs under JupyterHub's /user/<name>/ prefix)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jupyter_server.utils import url_path_join

from .serialize import API_PREFIX

DOCUMENT = Path(__file__).with_name("openapi.yaml")


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The document as kept in the repository (its server is the API's path on a bare server)."""
    return yaml.safe_load(DOCUMENT.read_text())


def served(base_url: str) -> dict[str, Any]:
    """The document with ``servers`` pointing at this server's API prefix."""
    return {**document(), "servers": [{"url": url_path_join(base_url, API_PREFIX)}]}


def as_json(base_url: str) -> str:
    return json.dumps(served(base_url), indent=1)


def as_yaml(base_url: str) -> str:
    return yaml.safe_dump(served(base_url), sort_keys=False, allow_unicode=True)
