"""Comparison: one protocol, several predictions (different models, or versions of one model) overlaid
on shared axes, a data set for that protocol as points, scalar outputs side by side, and exports of
the figure (PNG, SVG) and the data (CSV)."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import ipywidgets as w
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import InvalidInput  # noqa: E402
from ..lab import Lab  # noqa: E402
from ..protocols.interface import Interface, PlotSpec  # noqa: E402
from ..results import OutputData  # noqa: E402
from . import queries  # noqa: E402
from .common import Message, data_link, guarded, h2, header, html_table, page_box  # noqa: E402

_COLUMN = re.compile(r"^\s*(?P<name>[^()\[\]]+?)\s*[\(\[](?P<units>[^()\[\]]+)[\)\]]\s*$")
MAX_RUNS = 12


@dataclass(frozen=True)
class Series:
    """One prediction's outputs, with the label it has in legends and tables."""

    run_id: str
    label: str
    outputs: dict[str, OutputData]


def read_dataset(lab: Lab, name: str) -> dict[str, tuple[str, np.ndarray]]:
    """A data set's columns: name -> (units, values)."""
    frame = pd.read_csv(io.BytesIO(lab.read_file("dataset", name)), comment="#", index_col=False)
    columns = {}
    for header_text in frame.columns:
        match = _COLUMN.match(str(header_text))
        if match:
            columns[match["name"]] = (match["units"].strip(), frame[header_text].to_numpy(dtype=float))
    return columns


def _plot_specs(interface: Interface, series: list[Series]) -> list[PlotSpec]:
    """The protocol's default plots; without any, each 1-D output against its index."""
    if interface.plots:
        return list(interface.plots)
    names = sorted({o.name for s in series for o in s.outputs.values() if o.values.size > 1 and o.values.ndim == 1})
    return [PlotSpec("", name, name) for name in names]


class ComparisonPage:
    """Choose a protocol and predictions; the figure, table and exports follow every change."""

    def __init__(self, lab: Lab, protocol: str = "", runs: str = "", dataset: str = "") -> None:
        self.lab = lab
        self.message = Message()
        protocols = lab.names("protocol")
        self.protocol_pick = w.Dropdown(options=protocols, value=protocol if protocol in protocols else
                                        (protocols[0] if protocols else None), description="protocol",
                                        layout=w.Layout(width="380px"))
        self.run_pick = w.SelectMultiple(description="predictions", rows=8, layout=w.Layout(width="720px"))
        self.dataset_pick = w.Dropdown(description="data set", layout=w.Layout(width="380px"))
        self.figure = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.figure.add_class("lk-compare-figure")
        self.table = w.HTML()
        self.exports = w.HTML()
        self.series: list[Series] = []
        self.png = self.svg = self.csv = b""
        self.drawn: list[tuple[str, list[str]]] = []  # (axes title, legend labels): what the figure shows
        self._quiet = False
        self.protocol_pick.observe(lambda _: self._protocol_changed(), names="value")
        self.run_pick.observe(lambda _: self._update(), names="value")
        self.dataset_pick.observe(lambda _: self._update(), names="value")
        self.widget = page_box([
            header("compare", lab, "Compare predictions"),
            w.HTML('<div class="lk-muted">Pick one protocol, then several of its predictions (ctrl/shift-click '
                   'for more than one); a data set measuring that protocol is drawn as points.</div>'),
            self.protocol_pick, self.run_pick, self.dataset_pick, self.message, self.exports, self.figure,
            h2("Scalar outputs"), self.table])
        self._protocol_changed(select=[r for r in runs.split(",") if r], dataset=dataset)

    def _protocol_changed(self, select: list[str] | None = None, dataset: str = "") -> None:
        self._quiet = True
        try:
            protocol = self.protocol_pick.value
            found = queries.predictions_for(self.lab, protocol) if protocol else []
            self.run_pick.options = [(r.label, r.run_id) for r in found]
            datasets = queries.datasets_for(self.lab, protocol) if protocol else []
            self.dataset_pick.options = [("(none)", "")] + [(d, d) for d in datasets]
            self.dataset_pick.value = dataset if dataset in datasets else (datasets[0] if datasets else "")
            ids = {r.run_id for r in found}
            wanted = [r for r in (select or []) if r in ids] or [r.run_id for r in found[:2]]
            self.run_pick.value = tuple(wanted)
        finally:
            self._quiet = False
        self._update()

    def choose(self, run_ids: list[str], dataset: str | None = None) -> None:
        """Select these predictions (and data set) as a visitor would."""
        self.run_pick.value = tuple(run_ids)
        if dataset is not None:
            self.dataset_pick.value = dataset

    def _update(self) -> None:
        if self._quiet:
            return
        guarded(self.message, self.compare)()

    def compare(self) -> None:
        """Draw the overlay, fill the scalar table and the export links."""
        run_ids = list(self.run_pick.value)
        if not run_ids:
            self.figure.value, self.table.value, self.exports.value = b"", "", ""
            self.series = []
            if not self.run_pick.options:
                self.message.error("this protocol has no predictions yet: run it on the experiment matrix")
            return
        if len(run_ids) > MAX_RUNS:
            raise InvalidInput(f"compare at most {MAX_RUNS} predictions at once")
        self.series = []
        for run_id in run_ids:
            info = self.lab.status(run_id)
            if not info.results_path:
                continue
            prediction = self.lab.prediction(run_id)
            self.series.append(Series(run_id, f"{info.model} v{info.model_version} ({run_id[:6]})",
                                      prediction.outputs))
        interface = self.lab.interface(self.protocol_pick.value)
        dataset = read_dataset(self.lab, self.dataset_pick.value) if self.dataset_pick.value else {}
        self.png, self.svg = self._figure(interface, dataset)
        self.figure.value = self.png
        self.figure.layout.width = "640px" if len(self.drawn) <= 1 else "1100px"  # the figure's own size
        self.table.value = self._scalar_table(interface, dataset)
        self.csv = self._csv()
        stem = f"compare-{self.protocol_pick.value}"
        self.exports.value = ("Export: " + " · ".join([data_link(f"{stem}.png", self.png, "image/png", "figure (PNG)"),
                                                        data_link(f"{stem}.svg", self.svg, "image/svg+xml", "figure (SVG)"),
                                                        data_link(f"{stem}.csv", self.csv, "text/csv", "data (CSV)")]))

    def _figure(self, interface: Interface, dataset: dict[str, tuple[str, np.ndarray]]) -> tuple[bytes, bytes]:
        specs = _plot_specs(interface, self.series)
        n = max(len(specs), 1)
        columns = 2 if n > 1 else 1
        rows = -(-n // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 3.8 * rows), dpi=100, squeeze=False)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        self.drawn = []
        for ax, spec in zip(axes.flat, specs):
            units_x = units_y = ""
            for s in self.series:
                y = s.outputs.get(spec.y)
                x = s.outputs.get(spec.x) if spec.x else None
                if y is None or (spec.x and x is None):
                    continue
                xv = x.values.reshape(-1) if x is not None else np.arange(y.values.shape[0])
                yv = y.values
                if yv.ndim == 2 and yv.shape[0] != xv.size:
                    yv = yv.T  # one line per row of a 2-D output
                if yv.shape[0] != xv.size:
                    continue  # mismatched lengths cannot share these axes
                ax.plot(xv, yv, label=s.label, marker="." if xv.size < 50 else None, linewidth=1.4)
                units_x, units_y = (x.units if x is not None else ""), y.units
            if spec.y in dataset and (not spec.x or spec.x in dataset):
                dy_units, dy = dataset[spec.y]
                dx = dataset[spec.x][1] if spec.x else np.arange(dy.size)
                ax.plot(dx, dy, "o", color="black", markersize=4, label=f"data: {self.dataset_pick.value}",
                        zorder=5)
                units_y = units_y or dy_units
            ax.set_xlabel(f"{spec.x} ({units_x})" if spec.x else "index")
            ax.set_ylabel(f"{spec.y} ({units_y})" if units_y else spec.y)
            ax.set_title(spec.title or f"{spec.y} against {spec.x}", fontsize=11)
            self.drawn.append((ax.get_title(), [line.get_label() for line in ax.get_lines()]))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png")
        fig.savefig(svg, format="svg")
        plt.close(fig)
        return png.getvalue(), svg.getvalue()

    def _scalar_table(self, interface: Interface, dataset: dict[str, tuple[str, np.ndarray]]) -> str:
        names = [o.name for o in interface.outputs if not o.shape]
        names += sorted({o.name for s in self.series for o in s.outputs.values() if o.values.size == 1} - set(names))
        if not names:
            return '<div class="lk-muted">This protocol declares no scalar outputs.</div>'
        headers = ["output", "units"] + [s.label for s in self.series] + (["data (mean)"] if dataset else [])
        rows = []
        for name in names:
            units = next((s.outputs[name].units for s in self.series if name in s.outputs),
                         interface.output(name).units if interface.output(name) else "")
            row = [name, units]
            for s in self.series:
                o = s.outputs.get(name)
                row.append(f"{o.scalar:.6g}" if o is not None and o.values.size == 1 else "—")
            if dataset:
                row.append(f"{np.nanmean(dataset[name][1]):.6g}" if name in dataset else "—")
            rows.append(row)
        return html_table(headers, rows, numeric=tuple(range(2, len(headers))))

    def _csv(self) -> bytes:
        """Every compared output in long form: run, model label, output, units, index, value."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["run", "label", "output", "units", "index", "value"])
        for s in self.series:
            for o in s.outputs.values():
                for index, value in enumerate(np.asarray(o.values, dtype=float).reshape(-1)):
                    writer.writerow([s.run_id, s.label, o.name, o.units, index, repr(float(value))])
        return out.getvalue().encode()
