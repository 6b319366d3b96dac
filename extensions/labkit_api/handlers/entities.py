"""Models, protocols and datasets: listing, versions, uploads, tags, files, annotations, interfaces.
Endpoints that take a body receive it through ``bodies.StreamedBody`` (bounded, never whole in memory
while it arrives); the others are ``bodies.NoBody``, which drops a body sent anyway as it arrives."""
from __future__ import annotations

from .. import bodies, service
from .base import endpoint


def singular(kinds: str) -> str:
    return kinds[:-1]  # the routes accept only models|protocols|datasets


class EntitiesHandler(bodies.NoBody):
    query_parameters = ("limit", "offset", "term")

    @endpoint
    async def get(self, kinds: str) -> None:
        kind = singular(kinds)
        if kind == "model" and self.get_query_argument("term", None):
            term = self.get_query_argument("term")
            self.reply(await self.call(service.models_with_term, term, self.listing(keep=("term",))))
            return
        self.reply(await self.call(service.list_entities, kind, self.listing()))


class EntityHandler(bodies.NoBody):
    @endpoint
    async def get(self, kinds: str, name: str) -> None:
        self.reply(await self.call(service.get_entity, singular(kinds), name))


class VersionsHandler(bodies.StreamedUpload):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, kinds: str, name: str) -> None:
        self.reply(await self.call(service.list_versions, singular(kinds), name, self.listing()))

    @endpoint
    async def post(self, kinds: str, name: str) -> None:
        await self.receive()
        upload = await self.blocking(bodies.upload, self.request)
        self.reply(await self.call(service.add_version, singular(kinds), name, upload), 201)


class VersionHandler(bodies.NoBody):
    @endpoint
    async def get(self, kinds: str, name: str, ref: str) -> None:
        self.reply(await self.call(service.get_version, singular(kinds), name, ref))


class TagsHandler(bodies.StreamedBody):
    @endpoint
    async def post(self, kinds: str, name: str, ref: str) -> None:
        await self.receive()
        tag = await self.blocking(lambda: bodies.tag(bodies.json_object(self.request)))
        self.reply(await self.call(service.tag_version, singular(kinds), name, ref, tag), 201)


class FilesHandler(bodies.NoBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, kinds: str, name: str, ref: str) -> None:
        self.reply(await self.call(service.list_files, singular(kinds), name, ref, self.listing()))


class FileHandler(bodies.NoBody):
    @endpoint
    async def get(self, kinds: str, name: str, ref: str, file: str) -> None:
        self.send_file(await self.call(service.read_file, singular(kinds), name, ref, file))


class AnnotationsHandler(bodies.NoBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, name: str, ref: str) -> None:
        self.reply(await self.call(service.annotations, name, ref, self.listing()))


class InterfaceHandler(bodies.NoBody):
    @endpoint
    async def get(self, name: str, ref: str) -> None:
        self.reply(await self.call(service.interface, name, ref))


class ColumnsHandler(bodies.NoBody):
    @endpoint
    async def get(self, name: str, ref: str) -> None:
        self.reply(await self.call(service.dataset_columns, name, ref))


class ProtocolCheckHandler(bodies.StreamedNotebook):
    @endpoint
    async def post(self) -> None:
        await self.receive()
        notebook = await self.blocking(bodies.notebook, self.request)
        self.reply(await self.blocking(service.check, notebook))


class CompatibilityHandler(bodies.NoBody):
    query_parameters = ("model", "protocol", "model_version", "protocol_version")

    @endpoint
    async def get(self) -> None:
        model = self.required_query("model", "the model's name")
        protocol = self.required_query("protocol", "the protocol's name")
        self.reply(await self.call(service.compatibility, model, protocol,
                                   self.get_query_argument("model_version", "latest"),
                                   self.get_query_argument("protocol_version", "latest")))
