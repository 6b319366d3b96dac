"""The OpenAPI document: valid, served as kept in the repository, in step with the routes, and the
API's answers conform to it (schemathesis, on the running server)."""
from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, settings

try:
    import schemathesis
    from openapi_spec_validator import validate
except ImportError as err:  # pragma: no cover - a missing test tool is a failure, with the fix
    raise ImportError(f"{err}: install the test tools with `pip install -e '.[test]'`") from err

from labkit.dashboards.serve import ApiServer
from labkit_api.openapi import DOCUMENT
from labkit_api.routes import ROUTES

from .client import Api

KEPT = yaml.safe_load(DOCUMENT.read_text())
METHODS = ("get", "post", "put", "patch", "delete")


def test_the_kept_document_is_valid_openapi() -> None:
    validate(KEPT)
    ids = [op["operationId"] for path in KEPT["paths"].values() for m, op in path.items() if m in METHODS]
    assert len(ids) == len(set(ids))


def test_the_served_document_is_the_kept_one_with_this_servers_address(api: Api) -> None:
    served = api.ok("GET", "/openapi.json")
    assert served["servers"] == [{"url": "/labkit/api/v1"}]
    assert {k: v for k, v in served.items() if k != "servers"} == {k: v for k, v in KEPT.items() if k != "servers"}
    assert yaml.safe_load(api.get("/openapi.yaml").text) == served


def _route_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + "$")


def _example_path(template: str) -> str:
    """A concrete path for a documented template (each parameter replaced by a plain value)."""
    return re.sub(r"\{kinds\}", "models", re.sub(r"\{(?!kinds)[^}]+\}", "x", template))


def test_every_documented_path_has_a_route_and_every_route_is_documented() -> None:
    routes = [(_route_regex(pattern), handler) for pattern, handler in ROUTES[:-1]]  # the last is the 404 catch-all
    for template, operations in KEPT["paths"].items():
        path = _example_path(template)
        matching = [handler for regex, handler in routes if regex.match(path)]
        assert matching, f"{template} is documented but no route serves it"
        for method in (m for m in operations if m in METHODS):
            assert method in vars(matching[0]), \
                f"{method.upper()} {template} is documented but {matching[0].__name__} has no {method}"
    documented = [_example_path(t) for t in KEPT["paths"]]
    for regex, handler in routes:
        assert any(regex.match(p) for p in documented), f"route {regex.pattern} ({handler.__name__}) is not documented"


@pytest.fixture
def api_schema(api_server: ApiServer) -> object:
    return schemathesis.openapi.from_url(api_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.include(method="GET").parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_read_endpoints_conform_to_the_document(case: object, api_server: ApiServer) -> None:
    """Generated requests (valid and invalid) to every GET endpoint: no 5xx, only documented
    statuses and content types, and JSON bodies that match their schemas."""
    case.call_and_validate(headers={"Authorization": f"token {api_server.token}"})  # type: ignore[attr-defined]


@schema.exclude(method="GET").exclude(path_regex="^/matrix$|/rerun$").parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_write_endpoints_conform_to_the_document(case: object, api_server: ApiServer) -> None:
    """The same for the endpoints that change the lab, with fewer examples (each is refused or makes
    something small; the matrix and re-runs are left out: they would queue real simulations).
    A schema-valid upload may still be refused with 400: the schema cannot say what a valid CellML
    model or notebook is, so the check that schema-valid requests are accepted does not apply."""
    case.call_and_validate(headers={"Authorization": f"token {api_server.token}"},  # type: ignore[attr-defined]
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])
