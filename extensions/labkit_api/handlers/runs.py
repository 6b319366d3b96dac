"""Experiments and runs: submit, the matrix, status, cancel, re-run. Bodies are received through
``bodies.StreamedBody`` (bounded; 413 past MAX_JSON_BYTES)."""
from __future__ import annotations

from .. import bodies, service
from .base import ApiError, endpoint

RUN_FILTERS = ("status", "model", "protocol")


class RunsHandler(bodies.StreamedBody):
    query_parameters = ("limit", "offset", *RUN_FILTERS)

    @endpoint
    async def get(self) -> None:
        filters = {k: v for k in RUN_FILTERS if (v := self.get_query_argument(k, None))}
        self.reply(await self.call(service.list_runs, filters, self.listing(keep=RUN_FILTERS)))

    @endpoint
    async def post(self) -> None:
        await self.receive()
        order = await self.blocking(lambda: bodies.submission(bodies.json_object(self.request)))
        self.reply(await self.call(service.submit, order), 201)


class MatrixHandler(bodies.StreamedBody):
    @endpoint
    async def post(self) -> None:
        """The body is optional: none asks for every model and protocol."""
        await self.receive()
        data = await self.blocking(bodies.json_object, self.request) if self.request.body else {}
        models, protocols, only, rerun = await self.blocking(bodies.matrix, data)
        self.reply(await self.call(service.matrix, models, protocols, only, rerun), 201)


class RunHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.get_run, run_id))


class RunActionHandler(bodies.NoBody):
    """POST /runs/{id}/cancel and /runs/{id}/rerun."""

    @endpoint
    async def post(self, run_id: str, action: str) -> None:
        if action == "cancel":
            self.reply(await self.call(service.cancel, run_id))
        elif action == "rerun":
            self.reply(await self.call(service.rerun, run_id), 201)
        else:  # the route allows only these two
            raise ApiError(404, f"no action {action!r}")


class ReproductionHandler(bodies.NoBody):
    """GET /runs/{id}/reproduction: a finished re-run compared with the run it repeats."""

    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.reproduction, run_id))
