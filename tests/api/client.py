"""A small HTTP client for the API tests: the server's address and a credential, nothing clever."""
from __future__ import annotations

from typing import Any

import requests


class Api:
    """Requests to one labkit API, authenticated with ``token`` (none: anonymous)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token
        self.session = requests.Session()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**({"Authorization": f"token {self.token}"} if self.token else {}), **(extra or {})}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = self.headers(kwargs.pop("headers", None))
        return self.session.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """The JSON of a request that must answer ``status``."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        """The error message of a request that must fail with ``status``."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        return body["error"]

    def as_token(self, token: str | None) -> "Api":
        return Api(self.url, token)
