"""What every dashboard page shares: the lab from ``$LABKIT_LAB``, the page's URL query, links between
pages, the stylesheet, status colours, HTML tables, error boxes and download links.

The pages are served by Voilà from ``notebooks/dashboards/``; each notebook only lays out the widget
a page class in this package builds, so all logic is here and testable without a browser.
"""
from __future__ import annotations

import base64
import html
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import ipywidgets as w

from ..errors import LabkitError
from ..lab import Lab
from ..results.display import STATUS_STYLE  # the one status colour table (notebook display too)
from ..store.orm import as_utc

PAGES: dict[str, tuple[str, str]] = {
    "home": ("home.ipynb", "Home"),
    "browse": ("browse.ipynb", "Models, protocols & datasets"),
    "matrix": ("matrix.ipynb", "Experiment matrix"),
    "prediction": ("prediction.ipynb", "Prediction"),
    "compare": ("compare.ipynb", "Compare"),
    "account": ("account.ipynb", "Account"),
    "admin": ("admin.ipynb", "Users"),
}
NAV_PAGES = ("home", "browse", "matrix", "compare")

# status -> (background, text colour, symbol): one place so the matrix, badges and legend agree.
ACTIVE = ("queued", "running")
MAX_INLINE_BYTES = 25 * 1024 * 1024  # a data: link larger than this would make the page sluggish

CSS = """
<style>
.lk-page { max-width: 1400px; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; }
.lk-nav { display: flex; gap: 18px; align-items: baseline; padding: 8px 12px; margin-bottom: 10px;
          background: #263238; color: #eceff1; border-radius: 4px; }
.lk-page .lk-nav a { color: #b3e5fc; text-decoration: none; font-size: 14px; }
.lk-page .lk-nav a.lk-current { color: #ffffff; font-weight: 600; border-bottom: 2px solid #ffffff; }
.lk-nav .lk-brand { font-weight: 700; font-size: 16px; color: #ffffff; margin-right: 12px; }
.lk-nav .lk-ro { margin-left: auto; font-size: 12px; color: #ffcc80; }
.lk-nav .lk-who { margin-left: auto; font-size: 13px; color: #eceff1; }
.lk-nav .lk-ro + .lk-who { margin-left: 12px; }
.lk-page a { color: #0b5394; text-decoration: none; }
.lk-page a:hover { text-decoration: underline; }
.lk-h1 { font-size: 22px; font-weight: 600; margin: 4px 0 8px 0; }
.lk-h2 { font-size: 16px; font-weight: 600; margin: 12px 0 4px 0; }
.lk-muted { color: #666; font-size: 12px; }
.lk-error { background: #ffebee; color: #b71c1c; border-left: 4px solid #c62828; padding: 6px 10px;
            white-space: pre-wrap; font-family: monospace; font-size: 12px; }
.lk-ok { background: #e8f5e9; color: #1b5e20; border-left: 4px solid #2e7d32; padding: 6px 10px; }
table.lk-table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.lk-table th, table.lk-table td { border-bottom: 1px solid #e0e0e0; padding: 3px 10px;
                                       text-align: left; vertical-align: top; }
table.lk-table th { background: #f5f5f5; font-weight: 600; }
table.lk-table td.lk-num { text-align: right; font-variant-numeric: tabular-nums; }
.lk-cards { display: flex; gap: 12px; flex-wrap: wrap; }
.lk-page a.lk-card-link { color: inherit; text-decoration: none; }
.lk-card { border: 1px solid #e0e0e0; border-radius: 6px; padding: 10px 16px; min-width: 110px;
           background: #fafafa; }
.lk-card .lk-count { font-size: 26px; font-weight: 600; }
.lk-card .lk-label { font-size: 12px; color: #555; }
.lk-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
pre.lk-pre { max-height: 420px; overflow: auto; background: #fafafa; border: 1px solid #eee;
             padding: 6px; font-size: 12px; margin: 0; white-space: pre; }
.lk-diff-add { background: #e6ffed; } .lk-diff-del { background: #ffeef0; } .lk-diff-hunk { color: #6f42c1; }
.lk-cell.jupyter-button { width: 30px; height: 26px; min-width: 0; padding: 0; margin: 0;
                          border: 1px solid #e0e0e0; font-size: 13px; border-radius: 2px; }
.lk-cell.lk-selected { outline: 3px solid #ff6f00; outline-offset: -3px; }
.lk-rowhead.jupyter-button { height: 26px; margin: 0; justify-content: flex-start; text-align: left;
                             background: #f5f5f5; font-size: 12px; overflow: hidden; padding: 0 6px; }
.lk-colhead.jupyter-button { width: 30px; height: 150px; margin: 0; padding: 4px 0; min-width: 0;
                             writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
                             background: #f5f5f5; font-size: 12px; overflow: hidden; }
.lk-corner { font-size: 11px; color: #666; align-self: end; }
.lk-link.jupyter-button { background: none; color: #0b5394; text-align: left; justify-content: flex-start;
                          padding: 0 4px; height: 24px; box-shadow: none; }
.lk-link.jupyter-button:hover { text-decoration: underline; box-shadow: none; }
.lk-panel { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px 12px; margin: 6px 0; }
""" + "\n".join(
    f".lk-cell.lk-status-{name.replace(' ', '-')} {{ background: {bg}; color: {fg}; }}"
    for name, (bg, fg, _) in STATUS_STYLE.items()
) + "\n</style>"


def esc(value: object) -> str:
    """HTML-escape anything shown in a page: entity names and file contents come from users."""
    return html.escape(str(value), quote=True)


def status_class(status: str) -> str:
    """The CSS class that colours a matrix cell (the stylesheet has one per status)."""
    return "lk-status-" + status.replace(" ", "-")


def badge(status: str) -> str:
    """A coloured status label, in the matrix's colours."""
    bg, fg, symbol = STATUS_STYLE.get(status, ("#eeeeee", "#333333", ""))
    border = "border:1px solid #bdbdbd;" if bg == "#ffffff" else ""
    return (f'<span class="lk-badge lk-status" data-status="{esc(status)}" '
            f'style="background:{bg};color:{fg};{border}">{symbol} {esc(status)}</span>')


def legend() -> str:
    """Every status badge in a row, so that a colour never has to be guessed."""
    return " ".join(badge(s) for s in STATUS_STYLE)


def page_url(page: str, **params: object) -> str:
    """A link to another page, relative so that it works under any Voilà base URL."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return PAGES[page][0] + (f"?{query}" if query else "")


def link(page: str, text: str, **params: object) -> str:
    """An <a> to another page in the same tab (Voilà pages are separate kernels)."""
    return f'<a href="{esc(page_url(page, **params))}" target="_self">{esc(text)}</a>'


def entity_link(kind: str, name: str, version: int | str | None = None) -> str:
    """A link to an entity's page, at a version if given (provenance must point at the exact one)."""
    label = f"{name} v{version}" if version is not None else name
    return link("browse", label, kind=kind, name=name, version=version)


def wait_for_request(timeout: float | None = None) -> None:
    """In a preheated Voilà kernel, block until a visitor's request arrives and put its details
    (``QUERY_STRING``...) into the environment, as ``voila.utils.wait_for_request`` does.

    Our own copy: importing ``voila.utils`` drags in the whole Jupyter server (10+ s), and the
    point of a preheated kernel is a fast first paint."""
    if os.environ.get("VOILA_PREHEAT", "False") == "False" or not os.environ.get("VOILA_KERNEL_ID"):
        return
    import json

    from websockets.sync.client import connect
    host = os.environ.get("VOILA_APP_IP", "127.0.0.1")
    port = os.environ.get("VOILA_APP_PORT", "8866")
    base = os.environ.get("VOILA_WS_BASE_URL", os.environ.get("VOILA_SERVER_URL", "/"))
    protocol = os.environ.get("VOILA_WS_PROTOCOL", "ws")
    url = f"{protocol}://{host}:{port}{base}voila/query/{os.environ['VOILA_KERNEL_ID']}"
    with connect(url, open_timeout=10) as socket:
        info = json.loads(socket.recv(timeout=timeout))
    os.environ.update({str(k): str(v) for k, v in info.items()})


def query_params() -> dict[str, str]:
    """The page URL's query parameters. In a preheated Voilà kernel this first waits until a
    visitor's request arrives (the kernel started before it), so call it after the imports."""
    wait_for_request()
    query = os.environ.get("QUERY_STRING", "")
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=False).items()}


def session_secret(cookie_header: str | None = None) -> str | None:
    """The sign-in session in the visitor's cookies (Voilà puts the request's ``Cookie`` header into the
    page kernel's ``HTTP_COOKIE`` when the site has sign-in; see serve.voila_command)."""
    from tornado.httputil import parse_cookie  # as the servers read it: other sites' odd cookies do no harm

    from ..access import SESSION_COOKIE
    return parse_cookie(os.environ.get("HTTP_COOKIE", "") if cookie_header is None else cookie_header).get(
        SESSION_COOKIE) or None


_verified_visitor: str | None = None
HUB_SERVICE_ENV = "LABKIT_HUB_SERVICE"  # set in the pages' environment by `labkit hub-service`


def set_verified_visitor(name: str) -> None:
    """Name the visitor a server has already authenticated (JupyterHub: a Voilà prelaunch hook adds a
    first cell calling this with the hub user's name before the page's own cells run). Visitors cannot
    run code in a page kernel (Voilà passes widget messages only), so only the server can call it."""
    global _verified_visitor
    from ..access import check_user_name
    _verified_visitor = check_user_name(name)


def visitor(lab: Lab) -> Lab:
    """The lab as this page's visitor may use it: the visitor a server named (``set_verified_visitor``);
    with sign-in, whoever the session in their cookie belongs to (the lab checks it: a cookie is a claim,
    not an identity), else the public visitor, who only reads; without sign-in, the user the site was
    started for."""
    from ..access import PUBLIC_VISITOR
    if _verified_visitor is not None:
        return lab.as_user(PUBLIC_VISITOR if lab.user_disabled(_verified_visitor) else _verified_visitor)
    if os.environ.get(HUB_SERVICE_ENV):  # under the hub, a page nobody named acts for nobody
        return lab.as_user(PUBLIC_VISITOR)
    if not lab.settings.sign_in:
        return lab
    secret = session_secret()
    name = lab.session_user(secret)
    return lab.as_user(name, session=secret) if name else lab.as_user(PUBLIC_VISITOR)


def site_url(path: str) -> str:
    """An address on the dashboards' server outside the rendered pages (``login``, ``logout``)."""
    return os.environ.get("VOILA_BASE_URL", "/") + path


def here() -> str:
    """This page's path and query, to come back to after signing in or out."""
    query = os.environ.get("QUERY_STRING", "")
    return os.environ.get("SCRIPT_NAME", site_url("")) + (f"?{query}" if query else "")


def open_lab(path: str | os.PathLike | None = None) -> Lab:
    """The lab a dashboard shows: ``path`` or ``$LABKIT_LAB`` (set by ``labkit serve``)."""
    root = path or os.environ.get("LABKIT_LAB")
    if not root:
        raise LabkitError("the dashboards need a lab: start them with `labkit --lab DIR serve` "
                          "(or set LABKIT_LAB)")
    return Lab.open(root)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, raw: bool = False,
               numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then the caller escaped them)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            css = ' class="lk-num"' if i in numeric else ""
            cells.append(f"<td{css}>{value if raw else esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="lk-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def when(moment: datetime | None) -> str:
    """A timestamp as people read it (UTC, to the second)."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def data_link(file_name: str, data: bytes, mime: str = "application/octet-stream",
              label: str | None = None) -> str:
    """A download link carrying the bytes itself: results live outside Voilà's served folder, and a
    data: URL needs no extra server route."""
    if len(data) > MAX_INLINE_BYTES:
        return f'<span class="lk-muted">{esc(file_name)} is too large to download here ({len(data) >> 20} MiB)</span>'
    encoded = base64.b64encode(data).decode()
    return (f'<a class="lk-download" download="{esc(file_name)}" href="data:{mime};base64,{encoded}">'
            f'⬇ {esc(label or file_name)}</a>')


def error_text(err: BaseException) -> str:
    """The message a user sees: labkit's own errors as they are, anything else with its type."""
    if isinstance(err, LabkitError):
        return str(err)
    if isinstance(err, (ValueError, LookupError)):
        return f"{type(err).__name__}: {err}"
    return "".join(traceback.format_exception_only(type(err), err)).strip()


class Message(w.HTML):
    """A one-line result or error box under a form."""

    def error(self, err: BaseException | str) -> None:
        text = err if isinstance(err, str) else error_text(err)
        self.value = f'<div class="lk-error">{esc(text)}</div>'
        self.kind = "error"

    def ok(self, text: str, *, raw: bool = False) -> None:
        self.value = f'<div class="lk-ok">{text if raw else esc(text)}</div>'
        self.kind = "ok"

    def clear(self) -> None:
        self.value = ""
        self.kind = ""

    kind: str = ""

    @property
    def text(self) -> str:
        """The message without markup (what tests and screen readers read)."""
        import re
        return html.unescape(re.sub(r"<[^>]+>", "", self.value))


def guarded(message: Message, action: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a button handler so that a failure shows in the page instead of vanishing in the kernel log."""
    def handler(*args: Any) -> Any:
        message.clear()
        try:
            return action(*args)
        except Exception as err:  # every error must reach the visitor
            message.error(err)
            return None
    return handler


def header(current: str, lab: Lab, title: str) -> w.HTML:
    """The stylesheet, the navigation bar and the page title."""
    links = []
    for page in NAV_PAGES:
        css = ' class="lk-current"' if page == current else ""
        links.append(f'<a{css} href="{esc(page_url(page))}" target="_self">{esc(PAGES[page][1])}</a>')
    ro = '<span class="lk-ro">read-only</span>' if lab.settings.read_only else ""
    return w.HTML(CSS + f'<div class="lk-nav"><span class="lk-brand">labkit</span>{"".join(links)}{ro}'
                  f'{who(current, lab)}</div><div class="lk-h1">{esc(title)}</div>')


def who(current: str, lab: Lab) -> str:
    """The navigation bar's right end: who the page acts as, their account (and the users page for an
    admin), and signing in or out where the site has sign-in."""
    from urllib.parse import quote

    from ..access import PUBLIC_VISITOR
    back = quote(here(), safe="/")
    if lab.settings.sign_in and lab.user == PUBLIC_VISITOR:
        return (f'<span class="lk-who">not signed in · <a id="lk-sign-in" href="{esc(site_url("login"))}?next={esc(back)}"'
                ' target="_self">Sign in</a></span>')
    if lab.settings.read_only:
        return ""
    parts = [f'<span class="lk-user">{esc(lab.user)}</span>']
    for page in ("account", "admin"):
        if page == "admin" and not lab.may_manage_users:
            continue
        css = ' class="lk-current"' if page == current else ""
        parts.append(f'<a{css} href="{esc(page_url(page))}" target="_self">{esc(PAGES[page][1])}</a>')
    if lab.settings.sign_in:
        parts.append(f'<a id="lk-sign-out" href="{esc(site_url("logout"))}?next={esc(back)}" target="_self">Sign out</a>')
    return f'<span class="lk-who">{" · ".join(parts)}</span>'



def page_box(children: Sequence[w.Widget]) -> w.VBox:
    """The page's outer box; its class scopes the stylesheet to labkit's own widgets."""
    box = w.VBox(list(children))
    box.add_class("lk-page")
    return box


def h2(text: str) -> w.HTML:
    """A section heading."""
    return w.HTML(f'<div class="lk-h2">{esc(text)}</div>')


def link_button(description: str, tooltip: str = "") -> w.Button:
    """A button that looks like a link (in-page navigation without a page load)."""
    button = w.Button(description=description, tooltip=tooltip or description,
                      layout=w.Layout(width="auto"))
    button.add_class("lk-link")
    return button


def file_mime(name: str) -> str:
    """The MIME type of a download, so browsers name and open it sensibly."""
    suffix = Path(name).suffix.lower()
    return {".csv": "text/csv", ".ipynb": "application/x-ipynb+json", ".cellml": "application/xml",
            ".xml": "application/xml", ".png": "image/png", ".svg": "image/svg+xml", ".zip": "application/zip",
            ".txt": "text/plain", ".json": "application/json"}.get(suffix, "application/octet-stream")
