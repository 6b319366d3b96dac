"""A run's prediction: summary, outputs (JSON and CSV), executed notebook, plots, log, zip. None reads a
body: ``bodies.NoBody`` drops one sent anyway as it arrives (413 past MAX_JSON_BYTES)."""
from __future__ import annotations

from .. import bodies, service
from .base import endpoint


class PredictionHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.prediction, run_id))


class ArchiveHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.archive, run_id))


class OutputsHandler(bodies.NoBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.list_outputs, run_id, self.listing()))


class OutputHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str, name: str) -> None:
        self.reply(await self.call(service.output, run_id, name))


class OutputCsvHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str, name: str) -> None:
        self.send_file(await self.call(service.output_csv, run_id, name))


class NotebookHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.notebook, run_id))


class PlotsHandler(bodies.NoBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.list_plots, run_id, self.listing()))


class PlotHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str, file: str) -> None:
        self.send_file(await self.call(service.plot, run_id, file), attachment=False)


class LogHandler(bodies.NoBody):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.log, run_id), attachment=False)
