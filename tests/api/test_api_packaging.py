"""How Jupyter finds the extension: its entry point, and the config file an install ships."""
from __future__ import annotations

import json
import tomllib

from shared_data import REPO

from labkit_api import _jupyter_server_extension_points
from labkit_api.app import LabkitAPI


def test_the_package_declares_its_extension_point() -> None:
    assert _jupyter_server_extension_points() == [{"module": "labkit_api.app", "app": LabkitAPI}]
    assert LabkitAPI.name == "labkit_api"


def test_an_install_ships_the_config_that_enables_the_extension() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    shipped = project["tool"]["setuptools"]["data-files"]["etc/jupyter/jupyter_server_config.d"]
    config = json.loads((REPO / shipped[0]).read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"labkit_api": True}}}
    assert "openapi.yaml" in project["tool"]["setuptools"]["package-data"]["labkit_api"]
