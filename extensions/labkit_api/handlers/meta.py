"""The API's own resources: its OpenAPI document and who the caller is."""
from __future__ import annotations

from .. import bodies, openapi
from .base import LabkitHandler, endpoint


class OpenAPIHandler(bodies.NoBody):
    """The OpenAPI document (openapi.json or openapi.yaml); it needs no credentials, like any API
    description, and says nothing about the lab's contents."""

    async def checks(self) -> None:
        await super(LabkitHandler, self).prepare()  # Jupyter's checks only; no identity needed
        self._refuse_unknown_query()

    @endpoint
    async def get(self, suffix: str) -> None:
        if suffix == "yaml":
            self.finish(openapi.as_yaml(self.base_url), set_content_type="application/yaml")
        else:
            self.finish(openapi.as_json(self.base_url))


class MeHandler(bodies.NoBody):
    @endpoint
    async def get(self) -> None:
        assert self.identity is not None
        self.reply({"user": self.identity.user, "authenticated_by": self.identity.via})
