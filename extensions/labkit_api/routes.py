"""The URL table: every endpoint under /labkit/api/v1 (the OpenAPI document describes each)."""
from __future__ import annotations

from typing import Any

from . import bodies
from .handlers import access, entities, meta, predictions, runs
from .handlers.base import NotFoundHandler
from .serialize import API_PREFIX


class StreamedNotFound(bodies.NoBody, NotFoundHandler):
    """The catch-all 404, receiving a body sent to an unknown address like every endpoint does
    (bounded and dropped), rather than letting Tornado hold all of it first."""


KINDS = r"(models|protocols|datasets)"
NAME = r"([^/]+)"
REF = r"([^/]+)"
RUN = r"([^/]+)"
ENTITY = f"/{KINDS}/{NAME}"
VERSION = f"{ENTITY}/versions/{REF}"

ROUTES: list[tuple[str, type]] = [
    (r"/openapi\.(json|yaml)", meta.OpenAPIHandler),
    (r"/me", meta.MeHandler),
    (f"/{KINDS}", entities.EntitiesHandler),
    (ENTITY, entities.EntityHandler),
    (f"{ENTITY}/versions", entities.VersionsHandler),
    (VERSION, entities.VersionHandler),
    (f"{VERSION}/tags", entities.TagsHandler),
    (f"{VERSION}/visibility", access.VisibilityHandler),
    (f"{ENTITY}/collaborators", access.CollaboratorsHandler),
    (f"{ENTITY}/collaborators/{NAME}", access.CollaboratorHandler),
    (f"{VERSION}/files", entities.FilesHandler),
    (f"{VERSION}/files/(.+)", entities.FileHandler),
    (f"/models/{NAME}/versions/{REF}/annotations", entities.AnnotationsHandler),
    (f"/protocols/{NAME}/versions/{REF}/interface", entities.InterfaceHandler),
    (f"/datasets/{NAME}/versions/{REF}/columns", entities.ColumnsHandler),
    (r"/protocol-check", entities.ProtocolCheckHandler),
    (r"/compatibility", entities.CompatibilityHandler),
    (r"/users", access.UsersHandler),
    (f"/users/{NAME}", access.UserHandler),
    (f"/users/{NAME}/tokens", access.TokensHandler),
    (f"/users/{NAME}/tokens/{NAME}", access.TokenHandler),
    (r"/runs", runs.RunsHandler),
    (r"/matrix", runs.MatrixHandler),
    (f"/runs/{RUN}", runs.RunHandler),
    (f"/runs/{RUN}/(cancel|rerun)", runs.RunActionHandler),
    (f"/runs/{RUN}/reproduction", runs.ReproductionHandler),
    (f"/runs/{RUN}/prediction", predictions.PredictionHandler),
    (f"/runs/{RUN}/prediction\\.zip", predictions.ArchiveHandler),
    (f"/runs/{RUN}/outputs", predictions.OutputsHandler),
    (f"/runs/{RUN}/outputs/([A-Za-z_][A-Za-z0-9_]*)\\.csv", predictions.OutputCsvHandler),
    (f"/runs/{RUN}/outputs/([A-Za-z_][A-Za-z0-9_]*)", predictions.OutputHandler),
    (f"/runs/{RUN}/notebook", predictions.NotebookHandler),
    (f"/runs/{RUN}/plots", predictions.PlotsHandler),
    (f"/runs/{RUN}/plots/([^/]+)", predictions.PlotHandler),
    (f"/runs/{RUN}/log", predictions.LogHandler),
    (r"(?:/.*)?", StreamedNotFound),  # last: a JSON 404 for anything else under the prefix
]


def handlers() -> list[tuple[str, type, dict[str, Any]]]:
    """Tornado's (pattern, handler, kwargs); Jupyter puts its base_url in front."""
    return [(API_PREFIX + pattern, handler, {}) for pattern, handler in ROUTES]
