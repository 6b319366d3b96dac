"""The lab as a JupyterHub service (``labkit hub-service``, labkit/hub.py; docs/jupyterhub.md).

The service is JupyterHub's own single-user server (``jupyterhub-singleuser``): its identity provider
(HubOAuth) authenticates every request, browsers by the hub's OAuth cookie and scripts by
``Authorization: token <hub token>``, and lets in only users whose hub scopes include access to the
service. labkit's API and Voilà's pages then act as that hub user. Three pieces here keep the hub
users away from the lab's own rights, which the service holds (database, broker, lab folder):

* ``HubAuthorizer``: like ``signin.LabkitAuthorizer`` it closes Jupyter's kernels, contents, terminals,
  sessions and kernel specs to every user, with one exception that Voilà's pages need: the websocket
  of a page kernel, to the user the page was rendered for.
* ``PageKernelManager``: kernels start only for Voilà pages (through ``prelaunch_hook``), each
  recorded with the hub user it was started for, and a page's websocket passes only the messages
  widgets need (as standalone Voilà does): no ``execute_request``, so nobody runs code in a page
  kernel, which runs as the lab.
* ``prelaunch_hook``: inserts a first cell into each page's notebook that names the hub user as the
  page's visitor (``labkit.dashboards.common.set_verified_visitor``), so each dashboard acts for whoever
  is looking at it. Voilà refuses a prelaunch hook together with preheated kernels, and its server
  extension never preheats.
"""
from __future__ import annotations

import contextvars
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
from tornado import web
from traitlets import List, Unicode, default

from labkit.access import check_user_name
from labkit.errors import LabkitError

from .signin import LabkitAuthorizer

#: What a page's websocket may send its kernel: widget traffic only (standalone Voilà's list).
PAGE_MESSAGES = ("comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request",
                 "shutdown_request")

# The hub user a Voilà page is being rendered for: set by ``prelaunch_hook``, read (and cleared) when
# that same request starts the page's kernel (Voilà calls the hook, then starts the kernel, in one
# request handler; contextvars follow the handler's task, so concurrent pages never mix).
_PAGE_VISITOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("labkit_page_visitor", default=None)


def visitor_cell_source(name: str) -> str:
    """The code of the cell that makes a page act as ``name``."""
    return ("from labkit.dashboards.common import set_verified_visitor\n"
            f"set_verified_visitor({check_user_name(name)!r})  # the hub user this page was rendered for")


def prelaunch_hook(req: Any, notebook: Any, cwd: str) -> Any:
    """Voilà's ``VoilaConfiguration.prelaunch_hook``: the page acts as the hub user who asked for it."""
    import nbformat

    user = getattr(req, "current_user", None)
    name = getattr(user, "username", None)
    if not name:  # Voilà's page handler is @authenticated; refuse rather than render as nobody
        raise web.HTTPError(403, "no hub user: sign in to JupyterHub")
    try:
        source = visitor_cell_source(name)
    except LabkitError as err:
        raise web.HTTPError(403, f"the hub user {name!r} cannot use labkit: {err}") from None
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["labkit-visitor"]
    notebook.cells.insert(0, cell)
    _PAGE_VISITOR.set(name)
    return notebook


class PageKernelManager(AsyncMappingKernelManager):
    """Starts kernels for Voilà pages only, and remembers whom each was started for."""

    allowed_message_types = List(trait=Unicode(), config=True,
                                 help="Messages a kernel's websocket passes on (default: widgets only).")

    @default("allowed_message_types")
    def _default_allowed_message_types(self) -> list[str]:
        return list(PAGE_MESSAGES)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_visitors: dict[str, str] = {}

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        visitor = _PAGE_VISITOR.get()
        _PAGE_VISITOR.set(None)  # one page, one kernel: a second start in this request gets none
        if visitor is None:
            raise web.HTTPError(403, "kernels here start only for the lab's dashboard pages")
        kernel_id = await super().start_kernel(*args, **kwargs)
        self.page_visitors[kernel_id] = visitor
        return kernel_id

    def remove_kernel(self, kernel_id: str) -> Any:
        self.page_visitors.pop(kernel_id, None)
        return super().remove_kernel(kernel_id)

    def visitor_of(self, kernel_id: str | None) -> str | None:
        """The hub user whose page runs in this kernel (None: no such page kernel)."""
        return self.page_visitors.get(kernel_id) if kernel_id in self else None


class HubAuthorizer(LabkitAuthorizer):
    """Jupyter's own resources stay closed (``LabkitAuthorizer``), except the websocket of a page
    kernel, to the user the page was rendered for: Voilà's widgets talk to their kernel through it.
    labkit's API does not ask the authorizer (the library checks each user's rights); Voilà's pages
    and static files need no more than an authenticated hub user."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if action == "execute" and resource == "kernels" and isinstance(handler, KernelWebsocketHandler):
            manager = handler.kernel_manager
            owner = manager.visitor_of(getattr(handler, "kernel_id", None)) if isinstance(
                manager, PageKernelManager) else None
            allowed = owner is not None and owner == getattr(user, "username", None)
        else:
            allowed = False
        if not allowed:
            self.log.info("labkit hub service: refused %s %s to %s (%s)", action, resource,
                          getattr(user, "username", None), handler.request.path)
        return allowed
