"""The lab's public dashboards: ipywidget pages served by Voilà (``labkit serve``).

Each page is a class here; the notebooks in ``notebooks/dashboards/`` only build and show one::

    from labkit import dashboards
    params = dashboards.query_params()        # waits for the visitor when the kernel was preheated
    dashboards.page("matrix", params).widget

See docs/dashboards.md.
"""
from __future__ import annotations

from typing import Any

from ..lab import Lab
from .account import AccountPage
from .admin import UsersPage
from .browser import BrowserPage, EntityView, UploadForm
from .common import PAGES, open_lab, page_url, query_params, visitor
from .compare import ComparisonPage
from .home import HomePage
from .matrix import MatrixPage
from .prediction import PredictionPage, PredictionView

PAGE_CLASSES: dict[str, Any] = {"home": HomePage, "browse": BrowserPage, "matrix": MatrixPage,
                                "prediction": PredictionPage, "compare": ComparisonPage, "account": AccountPage,
                                "admin": UsersPage}
PAGE_PARAMS = {"home": (), "browse": ("kind", "name", "version", "q", "by"), "matrix": ("page", "filter", "view"),
               "prediction": ("run",), "compare": ("protocol", "runs", "dataset"), "account": (), "admin": ()}


def page(name: str, params: dict[str, str] | None = None, lab: Lab | None = None) -> Any:
    """Build page ``name`` for the lab in ``$LABKIT_LAB`` (or ``lab``) with the URL's parameters;
    unknown parameters are ignored (a shared link must not break a page)."""
    params = params or {}
    the_lab = visitor(lab or open_lab())
    kwargs = {k: v for k, v in params.items() if k in PAGE_PARAMS[name]}
    return PAGE_CLASSES[name](the_lab, **kwargs)


__all__ = ["AccountPage", "BrowserPage", "ComparisonPage", "EntityView", "HomePage", "MatrixPage", "PAGES", "PredictionPage",
           "PredictionView", "UploadForm", "UsersPage", "open_lab", "page", "page_url", "query_params", "visitor"]
