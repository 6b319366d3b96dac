"""Who may read and edit: visibility of versions, collaborators, accounts and API tokens. Every
handler is a ``bodies.StreamedBody``: a JSON body is received bounded (413 past MAX_JSON_BYTES), never
held whole by Tornado first."""
from __future__ import annotations

from .. import bodies, service_access
from .base import endpoint
from .entities import singular


class VisibilityHandler(bodies.StreamedBody):
    @endpoint
    async def put(self, kinds: str, name: str, ref: str) -> None:
        await self.receive()
        level = await self.blocking(lambda: bodies.visibility(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.set_visibility, singular(kinds), name, ref, level))


class CollaboratorsHandler(bodies.StreamedBody):
    @endpoint
    async def get(self, kinds: str, name: str) -> None:
        self.reply(await self.call(service_access.collaborators, singular(kinds), name))

    @endpoint
    async def post(self, kinds: str, name: str) -> None:
        await self.receive()
        user = await self.blocking(lambda: bodies.user(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.share, singular(kinds), name, user), 201)


class CollaboratorHandler(bodies.NoBody):
    @endpoint
    async def delete(self, kinds: str, name: str, user: str) -> None:
        self.reply(await self.call(service_access.unshare, singular(kinds), name, user))


class UsersHandler(bodies.NoBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self) -> None:
        self.reply(await self.call(service_access.list_users, self.listing()))


class UserHandler(bodies.StreamedBody):
    @endpoint
    async def put(self, name: str) -> None:
        await self.receive()
        change = await self.blocking(lambda: bodies.account_change(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.put_user, name, change))

    @endpoint
    async def delete(self, name: str) -> None:
        self.reply(await self.call(service_access.delete_user, name))


class TokensHandler(bodies.StreamedBody):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self, user: str) -> None:
        self.reply(await self.call(service_access.list_tokens, user, self.listing()))

    @endpoint
    async def post(self, user: str) -> None:
        """The body is optional: none (or ``{}``) asks for the defaults."""
        await self.receive()
        request = await self.blocking(
            lambda: bodies.token_request(bodies.json_object(self.request) if self.request.body else {}))
        self.reply(await self.call(service_access.create_token, user, request), 201)

    @endpoint
    async def delete(self, user: str) -> None:
        self.reply(await self.call(service_access.revoke_tokens, user))


class TokenHandler(bodies.NoBody):
    @endpoint
    async def delete(self, user: str, token_name: str) -> None:
        self.reply(await self.call(service_access.revoke_token, user, token_name))
