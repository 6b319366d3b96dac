"""A run's prediction: summary, outputs (JSON and CSV), executed notebook, plots, log, zip."""
from __future__ import annotations

from .. import service
from .base import LabkitHandler, endpoint


class PredictionHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.prediction, run_id))


class ArchiveHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.archive, run_id))


class OutputsHandler(LabkitHandler):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.list_outputs, run_id, self.listing()))


class OutputHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str, name: str) -> None:
        self.reply(await self.call(service.output, run_id, name))


class OutputCsvHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str, name: str) -> None:
        self.send_file(await self.call(service.output_csv, run_id, name))


class NotebookHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.notebook, run_id))


class PlotsHandler(LabkitHandler):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, run_id: str) -> None:
        self.reply(await self.call(service.list_plots, run_id, self.listing()))


class PlotHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str, file: str) -> None:
        self.send_file(await self.call(service.plot, run_id, file), attachment=False)


class LogHandler(LabkitHandler):
    @endpoint
    async def get(self, run_id: str) -> None:
        self.send_file(await self.call(service.log, run_id), attachment=False)
