"""Who may read and edit: visibility of versions, collaborators, users and API tokens."""
from __future__ import annotations

from .. import bodies, service_access
from .base import LabkitHandler, endpoint
from .entities import singular


class VisibilityHandler(LabkitHandler):
    @endpoint
    async def put(self, kinds: str, name: str, ref: str) -> None:
        level = await self.blocking(lambda: bodies.visibility(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.set_visibility, singular(kinds), name, ref, level))


class CollaboratorsHandler(LabkitHandler):
    @endpoint
    async def get(self, kinds: str, name: str) -> None:
        self.reply(await self.call(service_access.collaborators, singular(kinds), name))

    @endpoint
    async def post(self, kinds: str, name: str) -> None:
        user = await self.blocking(lambda: bodies.user(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.share, singular(kinds), name, user), 201)


class CollaboratorHandler(LabkitHandler):
    @endpoint
    async def delete(self, kinds: str, name: str, user: str) -> None:
        self.reply(await self.call(service_access.unshare, singular(kinds), name, user))


class UsersHandler(LabkitHandler):
    query_parameters = ("limit", "offset")

    @endpoint
    async def get(self) -> None:
        self.reply(await self.call(service_access.list_users, self.listing()))


class UserHandler(LabkitHandler):
    @endpoint
    async def put(self, name: str) -> None:
        moderator = await self.blocking(lambda: bodies.moderator(bodies.json_object(self.request)))
        self.reply(await self.call(service_access.put_user, name, moderator))


class TokensHandler(LabkitHandler):
    @endpoint
    async def post(self, user: str) -> None:
        self.reply(await self.call(service_access.create_token, user), 201)

    @endpoint
    async def delete(self, user: str) -> None:
        self.reply(await self.call(service_access.revoke_tokens, user))
