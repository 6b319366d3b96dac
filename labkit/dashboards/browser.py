"""Entity browser: search models, protocols and data sets; an entity's versions, files (view, download,
diff between versions) and metadata; upload a new entity or a new version."""
from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w
import nbformat

from ..errors import InvalidInput
from ..lab import Lab
from ..store.entities import VersionInfo
from . import queries
from .common import (Message, data_link, entity_link, esc, file_mime, guarded, header, html_table,
                     link_button, page_box, page_url, when)

KIND_CHOICES = [("all kinds", ""), ("models", "model"), ("protocols", "protocol"), ("datasets", "dataset")]
SEARCH_BY = [("name", "name"), ("annotation", "term"), ("tag", "tag")]
RESULTS_PER_PAGE = 40
MAX_VIEW_BYTES = 200_000
ACCEPT = {"model": ".cellml,.xml", "protocol": ".ipynb", "dataset": ".csv"}


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def diff_html(old: bytes, new: bytes, old_label: str, new_label: str) -> str:
    """A unified diff coloured line by line (added, removed, hunk headers)."""
    lines = list(difflib.unified_diff(_decode(old).splitlines(), _decode(new).splitlines(),
                                      old_label, new_label, lineterm="", n=3))
    if not lines:
        return '<div class="lk-muted">The two versions of this file are identical.</div>'
    out = []
    for line in lines[:5000]:
        css = ("lk-diff-hunk" if line.startswith("@@") else "lk-diff-add" if line.startswith("+")
               else "lk-diff-del" if line.startswith("-") else "")
        out.append(f'<span class="{css}">{esc(line)}</span>')
    more = f"\n… {len(lines) - 5000} more lines" if len(lines) > 5000 else ""
    return f'<pre class="lk-pre lk-diff">{chr(10).join(out)}{esc(more)}</pre>'


def markdown_html(text: str) -> str:
    """Markdown to HTML with mistune (installed with nbconvert, which Voilà needs); plain text if not.

    The text is a user's, shown to every visitor: raw HTML in it is escaped (never rendered), and
    mistune replaces links to ``javascript:`` and other unsafe schemes."""
    try:
        import mistune
        return mistune.create_markdown(escape=True)(text)
    except Exception:
        return f"<pre>{esc(text)}</pre>"


class EntityView:
    """One entity: versions, files and its kind's metadata; ``version`` picks the version shown first."""

    def __init__(self, lab: Lab, kind: str, name: str, version: str | int | None = None,
                 on_new_version: Callable[[str, str, str], None] | None = None) -> None:
        self.lab, self.kind, self.name = lab, kind, name
        self.versions: list[VersionInfo] = lab.versions(kind, name)
        latest = self.versions[-1]
        shown = lab.version(kind, name, version) if version not in (None, "") else latest
        options = [(self._label(v), v.number) for v in reversed(self.versions)]
        tags = sorted({t for v in self.versions for t in v.tags})
        owner, collaborators = lab.collaborators(kind, name)
        title = (f'<div class="lk-h2">{esc(kind)} <b>{esc(name)}</b> · {len(self.versions)} version(s), latest '
                 f'v{latest.number} <code>{esc(latest.commit[:10])}</code>'
                 + (f' · tags: {esc(", ".join(tags))}' if tags else "")
                 + f' · owner {esc(owner)}' + (f' (shared with {esc(", ".join(collaborators))})' if collaborators else "")
                 + f' · <a href="{esc(page_url("browse", kind=kind, name=name))}" target="_self">permalink</a></div>')
        self.title = w.HTML(title)

        self.versions_table = w.HTML(html_table(
            ["version", "commit", "tags", "visibility", "author", "date", "message"],
            [(f"v{v.number}", v.commit[:10], ", ".join(v.tags), v.visibility, v.author, when(v.created_at),
              v.message.strip()) for v in reversed(self.versions)]))

        self.version_pick = w.Dropdown(options=options, value=shown.number, description="version",
                                       layout=w.Layout(width="340px"))
        self.file_pick = w.Dropdown(description="file", layout=w.Layout(width="340px"))
        self.compare_pick = w.Dropdown(options=[("(no diff)", 0)] + options, value=0, description="diff with",
                                       layout=w.Layout(width="340px"))
        self.download = w.HTML()
        self.content = w.HTML()
        self.message = Message()
        self.version_pick.observe(lambda _: self._load_files(), names="value")
        self.file_pick.observe(lambda _: self.show_file(), names="value")
        self.compare_pick.observe(lambda _: self.show_file(), names="value")
        pickers = w.HBox([self.compare_pick, self.download], layout=w.Layout(align_items="center"))
        files_box = w.VBox([w.HBox([self.version_pick, self.file_pick]), pickers, self.message, self.content])
        self._load_files()

        self.details = w.HTML(self._details_html(shown))
        self.version_pick.observe(lambda c: setattr(self.details, "value", self._details_html(
            self.lab.version(self.kind, self.name, c["new"]))), names="value")
        details_title = {"model": "Annotations", "protocol": "Interface",
                         "dataset": "Columns"}[kind]
        self.tabs = w.Tab(children=[w.VBox([self.details]), files_box, w.VBox([self.versions_table])],
                          titles=[details_title, "Files", "Versions"])
        children: list[w.Widget] = [self.title]
        if on_new_version is not None and lab.may_change and lab.may_edit(kind, name):
            self.new_version_button = w.Button(description="Upload a new version", icon="upload",
                                               layout=w.Layout(width="200px"))
            self.new_version_button.on_click(lambda _: on_new_version(kind, name, latest.commit))
            children.append(self.new_version_button)
        self.widget = w.VBox(children + [self.tabs])
        self.widget.add_class("lk-panel")

    @staticmethod
    def _label(v: VersionInfo) -> str:
        tags = f" [{', '.join(v.tags)}]" if v.tags else ""
        return f"v{v.number} · {v.commit[:10]} · {v.created_at:%Y-%m-%d %H:%M}{tags}"

    def _load_files(self) -> None:
        files = self.lab.files(self.kind, self.name, self.version_pick.value)
        main = self.lab.version(self.kind, self.name, self.version_pick.value).main_file
        self.file_pick.options = files
        self.file_pick.value = main if main in files else (files[0] if files else None)
        self.show_file()

    def show_file(self) -> None:
        """Show the chosen file of the chosen version, or its diff against the other chosen version."""
        name = self.file_pick.value
        if not name:
            self.content.value = self.download.value = ""
            return
        number = self.version_pick.value
        data = self.lab.read_file(self.kind, self.name, number, name)
        self.download.value = data_link(name, data, file_mime(name), f"download {name} (v{number})")
        other = self.compare_pick.value
        if other:
            try:
                old = self.lab.read_file(self.kind, self.name, other, name)
            except Exception:
                old = b""
                self.message.error(f"{name} does not exist in v{other}; showing it as added")
            self.content.value = diff_html(old, data, f"{name} v{other}", f"{name} v{number}")
            return
        text = _decode(data[:MAX_VIEW_BYTES])
        more = f"\n… {len(data) - MAX_VIEW_BYTES} more bytes: download the file" if len(data) > MAX_VIEW_BYTES else ""
        self.content.value = f'<pre class="lk-pre lk-file">{esc(text)}{esc(more)}</pre>'

    def _details_html(self, version: VersionInfo) -> str:
        if self.kind == "model":
            annotations = self.lab.annotations(self.name, version.number)
            if not annotations:
                return '<div class="lk-muted">This model version annotates no oxmeta terms.</div>'
            return (f'<div class="lk-muted">{len(annotations)} oxmeta annotations of v{version.number}</div>'
                    + html_table(["oxmeta term", "variable"], sorted(annotations.items())))
        if self.kind == "protocol":
            return self._protocol_html(version)
        info = self.lab.dataset(self.name, version.number)
        protocol = entity_link("protocol", info["protocol"]) if info["protocol"] else "a protocol you may not read"
        return (f'<div>Measures the outputs of {"protocol " if info["protocol"] else ""}{protocol}; '
                f'{info["rows"]} rows.</div>'
                + html_table(["column", "units"], [(c["name"], c["units"]) for c in info["columns"]]))

    def _protocol_html(self, version: VersionInfo) -> str:
        iface = self.lab.interface(self.name, version.number)
        parts = [f'<div><b>{esc(iface.title)}</b>: {esc(iface.description)}</div>',
                 f'<div>Requires: {esc(", ".join(iface.requires) or "nothing")}; '
                 f'optional: {esc(", ".join(iface.optional) or "nothing")}'
                 + (f'; time limit {iface.time_limit:g} s' if iface.time_limit else "") + "</div>",
                 '<div class="lk-h2">Outputs</div>',
                 html_table(["output", "units", "shape", "description"],
                            [(o.name, o.units, "×".join(map(str, o.shape)) or "scalar", o.description)
                             for o in iface.outputs])]
        if iface.parameters:
            parts += ['<div class="lk-h2">Parameters</div>',
                      html_table(["parameter", "default"], [(k, repr(v)) for k, v in iface.parameters.items()])]
        if iface.plots:
            parts += ['<div class="lk-h2">Default plots</div>',
                      html_table(["title", "x", "y"], [(p.title, p.x, p.y) for p in iface.plots])]
        try:
            nb = nbformat.reads(_decode(self.lab.read_file("protocol", self.name, version.number)), as_version=4)
            docs = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        except Exception:
            docs = ""
        if docs:
            parts += ['<div class="lk-h2">Documentation</div>', f'<div class="lk-doc">{markdown_html(docs)}</div>']
        return "".join(parts)


class UploadForm:
    """Upload a new entity or a new version; the library's validation errors show in the form."""

    def __init__(self, lab: Lab, on_saved: Callable[[VersionInfo], None] | None = None) -> None:
        self.lab, self.on_saved = lab, on_saved
        kinds = [("model (.cellml)", "model"), ("protocol (.ipynb)", "protocol"), ("dataset (.csv)", "dataset")]
        if not lab.may_add_protocols:  # protocols are code: a role the lab's admin grants
            kinds.remove(("protocol (.ipynb)", "protocol"))
        self.kind = w.Dropdown(options=kinds, value="model", description="kind")
        self.kind.add_class("lk-upload-kind")
        self.upload = w.FileUpload(accept=ACCEPT["model"], multiple=False, description="Choose file")
        self.name = w.Text(description="name", placeholder="default: the file name")
        self.message_text = w.Text(description="message", placeholder="what changed")
        self.tag = w.Text(description="tag", placeholder="optional")
        self.visibility = w.Dropdown(options=[("private: you and your collaborators", "private"),
                                              ("public: everyone", "public")],
                                     value=lab.settings.default_visibility, description="visible to")
        self.protocol = w.Dropdown(description="protocol", options=[])
        self.parent = w.Text(description="parent", placeholder="commit this version is based on",
                             layout=w.Layout(display="none"))
        self.run_implied = w.Checkbox(value=False, description="run the experiments it implies", indent=False)
        self.save_button = w.Button(description="Save", button_style="primary", icon="save")
        self.save_button.add_class("lk-save")
        self.message = Message()
        self.saved: VersionInfo | None = None
        self.kind.observe(lambda _: self._kind_changed(), names="value")
        self.save_button.on_click(guarded(self.message, lambda _: self.save()))
        self._kind_changed()
        self.widget = w.VBox([self.kind, w.HBox([self.upload, w.HTML('<span class="lk-muted">one file</span>')]),
                              self.name, self.message_text, self.tag, self.visibility, self.protocol, self.parent,
                              self.run_implied, self.save_button, self.message])

    def _kind_changed(self) -> None:
        kind = self.kind.value
        self.upload.accept = ACCEPT[kind]
        self.protocol.layout.display = "" if kind == "dataset" else "none"
        if kind == "dataset":
            self.protocol.options = self.lab.names("protocol")
        self.run_implied.layout.display = "none" if kind == "dataset" else ""

    def prepare_new_version(self, kind: str, name: str, parent: str) -> None:
        """Fill the form for a new version of an existing entity (the parent commit guards against
        saving over someone else's newer version)."""
        self.kind.value = kind
        self.name.value = name
        self.parent.value = parent
        self.parent.layout.display = ""
        if kind == "dataset":
            self.protocol.value = self.lab.dataset(name)["protocol"]

    def files(self) -> dict[str, bytes]:
        return {f["name"]: bytes(f["content"]) for f in self.upload.value}

    def save(self) -> VersionInfo:
        if not self.lab.may_change:
            raise InvalidInput("this lab is read-only here: sign in to upload" if not self.lab.settings.read_only
                               else "this lab is read-only: uploads are switched off")
        files = self.files()
        if not files:
            raise InvalidInput("choose a file to upload first")
        file_name = next(iter(files))
        name = self.name.value.strip() or Path(file_name).stem
        options = dict(name=name, message=self.message_text.value.strip(), tag=self.tag.value.strip() or None,
                       parent=self.parent.value.strip() or None, visibility=self.visibility.value)
        kind = self.kind.value
        if kind == "dataset":
            if not self.protocol.value:
                raise InvalidInput("a data set must name the protocol whose outputs it measures")
            saved = self.lab.add_dataset(files, protocol=self.protocol.value, **options)
        else:
            saved = (self.lab.add_model if kind == "model" else self.lab.add_protocol)(files, **options)
        text = f"saved {esc(saved.version.label)} · {entity_link(kind, name)}"
        if saved.planned:
            text += f" · {len(saved.planned)} experiment(s) implied"
            if self.run_implied.value:
                runs = self.lab.run_planned(saved)
                text += f", {len(runs)} queued (see the <a href=\"{esc(page_url('matrix'))}\" target=\"_self\">matrix</a>)"
        self.message.ok(text, raw=True)
        self.saved = saved.version
        self.upload.value = ()
        self.parent.value = ""
        self.parent.layout.display = "none"
        if self.on_saved:
            self.on_saved(saved.version)
        return saved.version


class BrowserPage:
    """Search on the left, the chosen entity on the right, the upload form above it."""

    def __init__(self, lab: Lab, kind: str = "", name: str = "", version: str = "", q: str = "",
                 by: str = "name") -> None:
        self.lab = lab
        self.search_text = w.Text(value=q, placeholder="search…", continuous_update=False,
                                  layout=w.Layout(width="200px"))
        self.kind_pick = w.Dropdown(options=KIND_CHOICES, value=kind if kind in ("model", "protocol", "dataset") else "",
                                    layout=w.Layout(width="120px"))
        self.by_pick = w.ToggleButtons(options=SEARCH_BY, value=by if by in ("name", "term", "tag") else "name",
                                       style={"button_width": "104px"},
                                       tooltips=["search names", "search oxmeta annotation terms (models)", "search tags"])
        self.results_box = w.VBox(layout=w.Layout(max_height="620px", overflow="auto"))
        self.results_info = w.HTML()
        self.prev_button = w.Button(description="◀", layout=w.Layout(width="40px"))
        self.next_button = w.Button(description="▶", layout=w.Layout(width="40px"))
        self.prev_button.on_click(lambda _: self._page(-1))
        self.next_button.on_click(lambda _: self._page(+1))
        self.results: list[tuple[str, str]] = []
        self.offset = 0
        for control in (self.search_text, self.kind_pick, self.by_pick):
            control.observe(lambda _: self.search(), names="value")
        self.message = Message()
        self.entity_box = w.VBox()
        self.view: EntityView | None = None
        self.upload: UploadForm | None = None
        right: list[w.Widget] = []
        if lab.may_change:
            self.upload = UploadForm(lab, on_saved=self._saved)
            self.upload_panel = w.Accordion(children=[self.upload.widget], titles=["Upload a new entity or version"])
            self.upload_panel.selected_index = None
            right.append(self.upload_panel)
        right += [self.message, self.entity_box]
        left = w.VBox([w.HBox([self.search_text, self.kind_pick]), self.by_pick, self.results_info,
                       w.HBox([self.prev_button, self.next_button]), self.results_box],
                      layout=w.Layout(width="330px", min_width="330px"))
        self.widget = page_box([header("browse", lab, "Models, protocols & datasets"),
                                w.HBox([left, w.VBox(right, layout=w.Layout(flex="1 1 auto", margin="0 0 0 16px"))])])
        self.search()
        if kind and name:
            guarded(self.message, self.open)(kind, name, version or None)

    def search(self) -> None:
        """Re-run the search (every change of text, kind or field does)."""
        self.results = queries.search(self.lab, self.search_text.value, kind=self.kind_pick.value or None,
                                      by=self.by_pick.value)
        self.offset = 0
        self._show_results()

    def _page(self, step: int) -> None:
        offset = self.offset + step * RESULTS_PER_PAGE
        if 0 <= offset < max(len(self.results), 1):
            self.offset = offset
            self._show_results()

    def _show_results(self) -> None:
        shown = self.results[self.offset:self.offset + RESULTS_PER_PAGE]
        buttons = []
        for kind, name in shown:
            button = link_button(f"{kind} · {name}")
            button.on_click(guarded(self.message, lambda _, k=kind, n=name: self.open(k, n)))
            buttons.append(button)
        self.results_box.children = buttons
        total = len(self.results)
        self.results_info.value = (f'<div class="lk-muted">{total} found'
                                   + (f"; {self.offset + 1}–{self.offset + len(shown)} shown" if total > len(shown) else "")
                                   + "</div>")
        self.prev_button.disabled = self.offset == 0
        self.next_button.disabled = self.offset + RESULTS_PER_PAGE >= total

    def open(self, kind: str, name: str, version: str | int | None = None) -> EntityView:
        """Show an entity in the page (what clicking a result does)."""
        self.message.clear()
        self.view = EntityView(self.lab, kind, name, version,
                               on_new_version=self._new_version if self.upload else None)
        self.entity_box.children = [self.view.widget]
        return self.view

    def _new_version(self, kind: str, name: str, parent: str) -> None:
        assert self.upload is not None
        self.upload.prepare_new_version(kind, name, parent)
        self.upload_panel.selected_index = 0

    def _saved(self, version: VersionInfo) -> None:
        self.search()
        self.open(version.kind, version.entity)
