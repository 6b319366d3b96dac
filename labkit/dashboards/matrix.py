"""Experiment matrix: models x protocols, each cell coloured by the status of its newest run, kept live
by a polling thread; select cells, rows or columns to run, re-run or cancel; open a cell's prediction.

Large labs stay responsive: rows and columns are paginated, the widgets of a page are created once
and reused when the page changes, and the statuses of a whole page come from one query.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import ipywidgets as w

from ..errors import InvalidInput
from ..lab import Lab
from . import queries
from .common import (ACTIVE, STATUS_STYLE, Message, esc, guarded, header, legend, link, page_box,
                     status_class)
from .prediction import PredictionView

ROWS_PER_PAGE = 25
COLUMNS_PER_PAGE = 25
POLL_SECONDS = 1.0


@dataclass
class Cell:
    """One button of the grid and what it currently shows."""

    button: w.Button
    model: str = ""
    protocol: str = ""
    model_version: int = 0
    protocol_version: int = 0
    key: tuple[int, int] = (0, 0)  # (model version id, protocol version id)
    status: str = "not run"
    run_id: str | None = None
    css: set[str] = field(default_factory=set)


class MatrixPage:
    """The grid and its controls; ``live`` starts the polling thread (a page in Voilà wants it)."""

    def __init__(self, lab: Lab, *, rows_per_page: int = ROWS_PER_PAGE, columns_per_page: int = COLUMNS_PER_PAGE,
                 live: bool = True, poll_seconds: float = POLL_SECONDS, page: int | str = 0,
                 filter: str = "", view: str = "moderated") -> None:
        self.lab = lab
        self.rows_per_page, self.columns_per_page = rows_per_page, columns_per_page
        self.poll_seconds = poll_seconds
        self.read_only = not lab.may_change
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pins: dict[str, dict[str, int]] = {"model": {}, "protocol": {}}
        self.selected: set[tuple[str, str]] = set()
        self.row_page, self.column_page = int(page or 0), 0
        self.polls = 0

        self.message = Message()
        self.filter_text = w.Text(value=filter, placeholder="filter models…", continuous_update=False,
                                  layout=w.Layout(width="180px"))
        self.filter_text.observe(lambda _: self._filter_changed(), names="value")
        # Moderated versions and the visitor's own by default (the Web Lab's curated matrix).
        self.view_pick = w.ToggleButtons(options=[(label, key) for key, label in queries.MATRIX_VIEWS.items()],
                                         value=view if view in queries.MATRIX_VIEWS else "moderated",
                                         style={"button_width": "170px"})
        self.view_pick.observe(lambda _: guarded(self.message, self._view_changed)(), names="value")
        self.prev_rows = w.Button(description="◀ models", layout=w.Layout(width="100px"))
        self.next_rows = w.Button(description="models ▶", layout=w.Layout(width="100px"))
        self.prev_columns = w.Button(description="◀ protocols", layout=w.Layout(width="110px"))
        self.next_columns = w.Button(description="protocols ▶", layout=w.Layout(width="110px"))
        self.page_info = w.HTML()
        self.prev_rows.on_click(guarded(self.message, lambda _: self.go(rows=self.row_page - 1)))
        self.next_rows.on_click(guarded(self.message, lambda _: self.go(rows=self.row_page + 1)))
        self.prev_columns.on_click(guarded(self.message, lambda _: self.go(columns=self.column_page - 1)))
        self.next_columns.on_click(guarded(self.message, lambda _: self.go(columns=self.column_page + 1)))

        self.mode = w.ToggleButtons(options=[("click selects", "select"), ("click opens prediction", "open")],
                                    value="select" if not self.read_only else "open",
                                    style={"button_width": "170px"})
        self.run_button = w.Button(description="Run", icon="play", button_style="success",
                                   tooltip="run the selected cells that have not run yet")
        self.rerun_button = w.Button(description="Re-run", icon="repeat", button_style="info",
                                     tooltip="run every selected cell again (a new run; earlier ones are kept)")
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="danger",
                                      tooltip="cancel the selected queued or running cells")
        self.select_page_button = w.Button(description="Select page", layout=w.Layout(width="110px"))
        self.clear_button = w.Button(description="Clear selection", layout=w.Layout(width="130px"))
        self.selection_info = w.HTML()
        for button, css in ((self.run_button, "lk-run"), (self.rerun_button, "lk-rerun"),
                            (self.cancel_button, "lk-cancel")):
            button.add_class(css)
        self.run_button.on_click(guarded(self.message, lambda _: self.run_selected(only_new=True)))
        self.rerun_button.on_click(guarded(self.message, lambda _: self.run_selected(only_new=False)))
        self.cancel_button.on_click(guarded(self.message, lambda _: self.cancel_selected()))
        self.select_page_button.on_click(lambda _: self.select_page())
        self.clear_button.on_click(lambda _: self.clear_selection())
        self.status_line = w.HTML()

        self.version_kind = w.Dropdown(options=["model", "protocol"], value="model", layout=w.Layout(width="100px"))
        self.version_entity = w.Dropdown(layout=w.Layout(width="240px"))
        self.version_number = w.Dropdown(layout=w.Layout(width="110px"))
        self.version_use = w.Button(description="Use this version", layout=w.Layout(width="140px"))
        self.version_reset = w.Button(description="All latest", layout=w.Layout(width="100px"))
        self.pins_info = w.HTML()
        self.version_kind.observe(lambda _: self._version_entities(), names="value")
        self.version_entity.observe(lambda _: self._version_numbers(), names="value")
        self.version_use.on_click(guarded(self.message, lambda _: self.pin(
            self.version_kind.value, self.version_entity.value, self.version_number.value)))
        self.version_reset.on_click(guarded(self.message, lambda _: self.reset_pins()))

        # One layout and one style shared by every cell (and every header): a page of 25 x 20 cells is
        # then ~500 widget models in the browser, not ~1,500 (each widget would get its own of both).
        self._cell_layout = w.Layout(width="30px", height="26px")
        self._column_layout = w.Layout(width="30px", height="150px")
        self._row_layout = w.Layout(width="auto")
        self._button_style = w.ButtonStyle()
        self.grid = w.GridBox(layout=w.Layout(grid_gap="2px", overflow="auto"))
        self.corner = w.HTML('<div class="lk-corner">model \\ protocol</div>')
        self.column_heads: list[w.Button] = []
        self.row_heads: list[w.Button] = []
        self.cells: list[list[Cell]] = []
        self.detail = w.VBox()

        self.models: list[queries.LatestVersion] = []
        self.protocols: list[queries.LatestVersion] = []
        self.page_models: list[tuple[str, int, int]] = []  # (name, version id, number)
        self.page_protocols: list[tuple[str, int, int]] = []
        self.load()

        actions = w.HBox([self.run_button, self.rerun_button, self.cancel_button, self.select_page_button,
                          self.clear_button, self.selection_info],
                         layout=w.Layout(align_items="center", flex_flow="row wrap"))
        if self.read_only:
            actions.layout.display = "none"
            self.mode.layout.display = "none"
        versions = w.Accordion(children=[w.VBox([w.HBox([self.version_kind, self.version_entity, self.version_number,
                                                          self.version_use, self.version_reset]), self.pins_info])],
                               titles=["Versions (latest by default)"])
        versions.selected_index = None
        self.widget = page_box([
            header("matrix", lab, "Experiment matrix"),
            w.HTML(f'<div class="lk-legend">{legend()}</div>'),
            self.view_pick,
            w.HBox([self.filter_text, self.prev_rows, self.next_rows, self.prev_columns, self.next_columns,
                    self.page_info], layout=w.Layout(align_items="center", flex_flow="row wrap")),
            versions, self.mode, actions, self.message, self.status_line, self.grid, self.detail])
        self._version_entities()
        if live:
            self.start()

    # -- data ------------------------------------------------------------------------------------
    def load(self) -> None:
        """Re-read the entity lists (new models or protocols appear) and redraw the current page."""
        with self._lock:
            self.models = queries.latest_versions(self.lab, "model", view=self.view_pick.value)
            self.protocols = queries.latest_versions(self.lab, "protocol", view=self.view_pick.value)
            self._layout_page()

    def _filtered_models(self) -> list[queries.LatestVersion]:
        text = self.filter_text.value.strip().lower()
        return [m for m in self.models if text in m.name.lower()] if text else self.models

    def _page_entities(self, kind: str, entities: list[queries.LatestVersion], page: int,
                       per_page: int) -> list[tuple[str, int, int]]:
        """(name, version id, number) of one page, with pinned versions in place of the latest."""
        chosen = entities[page * per_page:(page + 1) * per_page]
        pinned = queries.version_ids(self.lab, kind, {e.name: self.pins[kind][e.name] for e in chosen
                                                      if e.name in self.pins[kind]})
        return [(e.name, *pinned.get(e.name, (e.version_id, e.number))) for e in chosen]

    @property
    def row_pages(self) -> int:
        return max(1, -(-len(self._filtered_models()) // self.rows_per_page))

    @property
    def column_pages(self) -> int:
        return max(1, -(-len(self.protocols) // self.columns_per_page))

    # -- layout ----------------------------------------------------------------------------------
    def _layout_page(self) -> None:
        """Point the grid's widgets at the current page; widgets are created only when the grid grows."""
        models = self._filtered_models()
        self.row_page = min(max(self.row_page, 0), self.row_pages - 1)
        self.column_page = min(max(self.column_page, 0), self.column_pages - 1)
        self.page_models = self._page_entities("model", models, self.row_page, self.rows_per_page)
        self.page_protocols = self._page_entities("protocol", self.protocols, self.column_page,
                                                  self.columns_per_page)
        n_rows, n_cols = len(self.page_models), len(self.page_protocols)
        while len(self.column_heads) < n_cols:
            self._add_column_head()
        while len(self.row_heads) < n_rows:
            self._add_row()
        for r, row in enumerate(self.cells):
            while len(row) < len(self.column_heads):
                row.append(self._new_cell(r, len(row)))
        for c, head in enumerate(self.column_heads[:n_cols]):
            name, _, number = self.page_protocols[c]
            head.description = f"{name} v{number}"
            head.tooltip = f"protocol {name} v{number}: select this column"
        for r, head in enumerate(self.row_heads[:n_rows]):
            name, _, number = self.page_models[r]
            head.description = f"{name} v{number}"
            head.tooltip = f"model {name} v{number}: select this row"
            for c in range(n_cols):
                pname, pvid, pnumber = self.page_protocols[c]
                cell = self.cells[r][c]
                cell.model, cell.model_version, cell.protocol, cell.protocol_version = name, number, pname, pnumber
                cell.key = (self.page_models[r][1], pvid)
        children: list[w.Widget] = [self.corner] + self.column_heads[:n_cols]
        for r in range(n_rows):
            children.append(self.row_heads[r])
            children.extend(cell.button for cell in self.cells[r][:n_cols])
        self.grid.layout.grid_template_columns = f"minmax(160px, 240px) repeat({max(n_cols, 1)}, 30px)"
        self.grid.children = children
        models_total = len(models)
        first = self.row_page * self.rows_per_page
        cfirst = self.column_page * self.columns_per_page
        self.page_info.value = (f'<span class="lk-muted">models {first + 1 if n_rows else 0}–{first + n_rows} of '
                                f'{models_total} · protocols {cfirst + 1 if n_cols else 0}–{cfirst + n_cols} of '
                                f'{len(self.protocols)}</span>')
        self.prev_rows.disabled = self.row_page == 0
        self.next_rows.disabled = self.row_page >= self.row_pages - 1
        self.prev_columns.disabled = self.column_page == 0
        self.next_columns.disabled = self.column_page >= self.column_pages - 1
        if not n_rows or not n_cols:
            self.status_line.value = ('<div class="lk-muted">The matrix is empty: add models and protocols on the '
                                      f'{link("browse", "entity page")}.</div>')
        self.refresh_statuses(force=True)

    def _add_column_head(self) -> None:
        index = len(self.column_heads)
        head = w.Button(layout=self._column_layout, style=self._button_style)
        head.add_class("lk-colhead")
        head.on_click(lambda _: self.toggle_column(index))
        self.column_heads.append(head)

    def _add_row(self) -> None:
        index = len(self.row_heads)
        head = w.Button(layout=self._row_layout, style=self._button_style)
        head.add_class("lk-rowhead")
        head.on_click(lambda _: self.toggle_row(index))
        self.row_heads.append(head)
        self.cells.append([self._new_cell(index, c) for c in range(len(self.column_heads))])

    def _new_cell(self, row: int, column: int) -> Cell:
        button = w.Button(description="", layout=self._cell_layout, style=self._button_style)
        button.add_class("lk-cell")
        cell = Cell(button)
        button.on_click(guarded(self.message, lambda _: self.click(row, column)))
        return cell

    def _paint(self, cell: Cell, status: str, run_id: str | None, runs: int = 0) -> None:
        """Colour one cell: only changed classes are sent to the browser."""
        selected = (cell.model, cell.protocol) in self.selected
        wanted = {"lk-cell", status_class(status)} | ({"lk-selected"} if selected else set())
        if wanted != cell.css:
            for css in cell.css - wanted:
                cell.button.remove_class(css)
            for css in wanted - cell.css:
                cell.button.add_class(css)
            cell.css = wanted
        symbol = STATUS_STYLE.get(status, ("", "", "?"))[2]
        if cell.button.description != symbol:
            cell.button.description = symbol
        tooltip = (f"{cell.model} v{cell.model_version} × {cell.protocol} v{cell.protocol_version}: {status}"
                   + (f" ({runs} runs)" if runs > 1 else ""))
        if cell.button.tooltip != tooltip:
            cell.button.tooltip = tooltip
        cell.status, cell.run_id = status, run_id

    # -- live status -----------------------------------------------------------------------------
    def refresh_statuses(self, force: bool = False) -> dict[str, int]:
        """Re-read the statuses of the page's cells in one query and repaint the changed ones."""
        with self._lock:
            found = queries.grid_statuses(self.lab, [m[1] for m in self.page_models],
                                          [p[1] for p in self.page_protocols])
            tally: dict[str, int] = {}
            for r in range(len(self.page_models)):
                for c in range(len(self.page_protocols)):
                    cell = self.cells[r][c]
                    newest = found.get(cell.key)
                    status = newest.status if newest else "not run"
                    tally[status] = tally.get(status, 0) + 1
                    if force or status != cell.status or (newest and newest.run_id != cell.run_id):
                        self._paint(cell, status, newest.run_id if newest else None, newest.runs if newest else 0)
            self.polls += 1
            summary = " · ".join(f"{n} {s}" for s, n in sorted(tally.items()))
            if self.page_models and self.page_protocols:
                self.status_line.value = (f'<div class="lk-muted" data-polls="{self.polls}">this page: {esc(summary)}'
                                          f' · updated {time.strftime("%H:%M:%S")}</div>')
            self._selection_changed()
            return tally

    def start(self) -> None:
        """Poll the statuses every ``poll_seconds`` until ``stop`` (or the kernel ends)."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="labkit-matrix-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End live updates (tests; in Voilà the thread ends with the kernel)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh_statuses()
            except Exception as err:  # a database hiccup must not end live updates
                self.message.error(err)

    # -- selection and actions -------------------------------------------------------------------
    def visible_cells(self) -> list[Cell]:
        """The cells of the current page (the grid keeps spare widgets for larger pages)."""
        return [self.cells[r][c] for r in range(len(self.page_models)) for c in range(len(self.page_protocols))]

    def cell(self, model: str, protocol: str) -> Cell:
        """The visible cell of a (model, protocol) pair."""
        for cell in self.visible_cells():
            if (cell.model, cell.protocol) == (model, protocol):
                return cell
        raise InvalidInput(f"{model} × {protocol} is not on this page of the matrix")

    def click(self, row: int, column: int) -> None:
        """A cell click: toggle its selection, or open its prediction, by the chosen mode."""
        cell = self.cells[row][column]
        if self.mode.value == "open":
            self.open(cell)
        else:
            self._toggle([cell])

    def _toggle(self, cells: list[Cell]) -> None:
        with self._lock:
            keys = {(c.model, c.protocol) for c in cells}
            if keys <= self.selected:
                self.selected -= keys
            else:
                self.selected |= keys
            for c in cells:
                self._paint(c, c.status, c.run_id)
            self._selection_changed()

    def toggle_row(self, row: int) -> None:
        """A click on a model's name: (un)select its cells on this page."""
        self._toggle(self.cells[row][:len(self.page_protocols)])

    def toggle_column(self, column: int) -> None:
        """A click on a protocol's name: (un)select its cells on this page."""
        self._toggle([self.cells[r][column] for r in range(len(self.page_models))])

    def select_page(self) -> None:
        """Select every cell of the page (then Run fills in whatever never ran)."""
        with self._lock:
            self.selected |= {(c.model, c.protocol) for c in self.visible_cells()}
            for c in self.visible_cells():
                self._paint(c, c.status, c.run_id)
            self._selection_changed()

    def clear_selection(self) -> None:
        with self._lock:
            self.selected.clear()
            for c in self.visible_cells():
                self._paint(c, c.status, c.run_id)
            self._selection_changed()

    def _selection_changed(self) -> None:
        n = len(self.selected)
        self.selection_info.value = f'<span class="lk-muted">{n} selected</span>' if n else ""

    def _selected_cells(self) -> list[Cell]:
        return [c for c in self.visible_cells() if (c.model, c.protocol) in self.selected]

    def run_selected(self, *, only_new: bool) -> list[str]:
        """Queue the selected cells (only never-run ones, or all that are not already active)."""
        if self.read_only:
            raise InvalidInput("this lab is read-only: runs cannot be started here")
        cells = [c for c in self._selected_cells()
                 if (c.status == "not run" if only_new else c.status not in ACTIVE)]
        if not cells:
            raise InvalidInput("select cells to run first" if not self.selected else
                               "nothing to do: the selected cells have run already (use Re-run) or are running")
        run_ids = []
        for c in cells:
            info = self.lab.run(c.model, c.protocol, model_version=c.model_version,
                                protocol_version=c.protocol_version)
            run_ids.append(info.id)
        self.selected.clear()
        self.refresh_statuses(force=True)
        self.message.ok(f"{len(run_ids)} run(s) submitted")
        return run_ids

    def cancel_selected(self) -> list[str]:
        if self.read_only:
            raise InvalidInput("this lab is read-only: runs cannot be cancelled here")
        cells = [c for c in self._selected_cells() if c.status in ACTIVE and c.run_id]
        if not cells:
            raise InvalidInput("none of the selected cells is queued or running")
        for c in cells:
            self.lab.cancel(c.run_id)  # type: ignore[arg-type]
        self.selected.clear()
        self.refresh_statuses(force=True)
        self.message.ok(f"cancel requested for {len(cells)} run(s)")
        return [c.run_id for c in cells if c.run_id]

    def open(self, cell: Cell) -> PredictionView | None:
        """Show the newest prediction of a cell below the grid, with a link to its own page."""
        if not cell.run_id:
            self.detail.children = [w.HTML(f'<div class="lk-muted">{esc(cell.model)} × {esc(cell.protocol)} '
                                           "has not run yet.</div>")]
            return None
        view = PredictionView(self.lab, cell.run_id, live=True, standalone=False)
        self.detail.children = [view.widget]
        return view

    # -- paging and versions ---------------------------------------------------------------------
    def go(self, *, rows: int | None = None, columns: int | None = None) -> None:
        """Show another page of models (rows) or protocols (columns)."""
        with self._lock:
            if rows is not None:
                self.row_page = rows
            if columns is not None:
                self.column_page = columns
            self._layout_page()

    def _filter_changed(self) -> None:
        self.row_page = 0
        self.load()

    def _view_changed(self) -> None:
        self.row_page = self.column_page = 0
        self.load()
        self._version_entities()

    def _version_entities(self) -> None:
        kind = self.version_kind.value
        self.version_entity.options = [e.name for e in (self.models if kind == "model" else self.protocols)]
        self._version_numbers()

    def _version_numbers(self) -> None:
        name = self.version_entity.value
        if not name:
            self.version_number.options = []
            return
        self.version_number.options = [(f"v{v.number}" + (f" [{', '.join(v.tags)}]" if v.tags else ""), v.number)
                                       for v in reversed(self.lab.versions(self.version_kind.value, name))]

    def pin(self, kind: str, name: str, number: int) -> None:
        """Show version ``number`` of one model or protocol instead of its latest."""
        if not name or not number:
            raise InvalidInput("choose an entity and a version")
        self.pins[kind][name] = int(number)
        self._show_pins()
        with self._lock:
            self._layout_page()

    def reset_pins(self) -> None:
        """Back to the latest version of everything."""
        self.pins = {"model": {}, "protocol": {}}
        self._show_pins()
        with self._lock:
            self._layout_page()

    def _show_pins(self) -> None:
        pins = [f"{kind} {name} v{n}" for kind in ("model", "protocol") for name, n in sorted(self.pins[kind].items())]
        self.pins_info.value = f'<span class="lk-muted">pinned: {esc(", ".join(pins))}</span>' if pins else ""
