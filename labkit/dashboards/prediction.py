"""Prediction view: one run's status, provenance, timings, default plots, output tables, downloads,
log and, when it failed, the failing cell and its error. A run still in progress is watched until
it ends, then the view fills in."""
from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import ipywidgets as w
import numpy as np

from ..experiments import RunInfo
from ..lab import Lab
from ..results import Prediction
from .common import (Message, badge, data_link, entity_link, esc, file_mime, guarded, h2, header, html_table,
                     link, page_box, when)

POLL_SECONDS = 1.0


def archive_bytes(folder: Path) -> bytes:
    """The whole prediction folder as a zip (what 'download archive' gives)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _value_text(values: np.ndarray) -> str:
    if values.size == 1:
        return f"{float(values.reshape(-1)[0]):.6g}"
    flat = values.reshape(-1)
    return f"{values.size} values, {np.nanmin(flat):.4g} … {np.nanmax(flat):.4g}"


class PredictionView:
    """Everything about one run. ``standalone`` adds the page header; ``live`` watches an active run."""

    def __init__(self, lab: Lab, run_id: str, *, live: bool = True, standalone: bool = True,
                 poll_seconds: float = POLL_SECONDS) -> None:
        self.lab, self.run_id = lab, run_id
        self.poll_seconds = poll_seconds
        self.message = Message()
        self.summary = w.HTML()
        self.body = w.VBox()
        self.info: RunInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        children: list[w.Widget] = [self.summary, self.message, self.body]
        if standalone:
            children.insert(0, header("prediction", lab, "Prediction"))
        self.widget = page_box(children)
        if not standalone:
            self.widget.add_class("lk-panel")
        self.archive_link = w.HTML()
        self.refresh()
        if live and self.info is not None and not self.info.done:
            self._thread = threading.Thread(target=self._watch, name="labkit-prediction-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                before = self.info.status if self.info else None
                info = self.lab.status(self.run_id)
                if info.status != before:
                    self.refresh()
                if info.done:
                    return
            except Exception as err:  # keep the page alive; show what went wrong
                self.message.error(err)

    def refresh(self) -> None:
        """Re-read the run and redraw the view."""
        try:
            info = self.lab.status(self.run_id)
        except Exception as err:
            self.message.error(err)
            return
        self.summary.value = self._summary_html(info)
        sections: list[w.Widget] = []
        if info.status == "failed" or info.failing_cell:
            sections.append(w.HTML(self._failure_html(info)))
        if info.rerun_of and info.done:
            sections += self._reproduction_sections(info)
        if info.done and self.lab.may_change:
            sections.append(self._rerun_bar())
        if info.results_path:
            sections += self._prediction_sections(self.lab.prediction(info.id))
        elif not info.done:
            sections.append(w.HTML('<div class="lk-muted">The prediction appears here when the run ends '
                                   '(this view updates itself).</div>'))
        sections.append(h2("Status history"))
        history = [(when(at), status, attempt, detail) for status, attempt, at, detail in info.history]
        sections.append(w.HTML(html_table(["when", "status", "attempt", "detail"], history)))
        self.body.children = sections
        self.info = info  # last: whoever waits on ``info`` finds the view already drawn

    def _summary_html(self, info: RunInfo) -> str:
        duration = ""
        if info.started_at and info.finished_at:
            duration = f" · ran {(info.finished_at - info.started_at).total_seconds():.1f} s"
        rows = [("status", badge(info.status) + esc(duration)),
                ("model", entity_link("model", info.model, info.model_version)),
                ("protocol", entity_link("protocol", info.protocol, info.protocol_version)),
                ("run", f"<code>{esc(info.id)}</code> · attempt {info.attempt} · "
                        + link("prediction", "permalink", run=info.id)),
                ("parameters", esc(", ".join(f"{k}={v!r}" for k, v in info.parameters.items()) or "defaults")),
                ("created", esc(when(info.created_at))),
                ("finished", esc(when(info.finished_at)))]
        if info.error and info.status != "success":
            rows.append(("error", f'<span class="lk-error-text">{esc(info.error.splitlines()[0])}</span>'))
        if info.missing_terms:
            rows.append(("model lacks", esc(", ".join(info.missing_terms))))
        if info.rerun_of:
            rows.append(("re-run of", link("prediction", info.rerun_of, run=info.rerun_of)))
        binder = self.lab.binder_url(info.id) if info.binder_ref else None
        if binder:
            rows.append(("Binder", f'<a href="{esc(binder)}" target="_blank" rel="noopener">re-run it on Binder</a>'))
        body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
        return f'<table class="lk-table lk-summary" data-status="{esc(info.status)}">{body}</table>'

    def _rerun_bar(self) -> w.Widget:
        button = w.Button(description="Re-run", icon="repeat", tooltip="Run the same versions and parameters "
                          "again in a fresh folder, then compare every output with this run's")
        button.add_class("lk-rerun")
        button.on_click(guarded(self.message, lambda _: self.rerun()))
        return w.HBox([button], layout=w.Layout(margin="4px 0"))

    def rerun(self) -> RunInfo:
        """Queue this run's experiment again; the message links to the new run's page, which compares."""
        again = self.lab.rerun(self.run_id)
        self.message.ok(f"Re-run queued as run {esc(again.id[:8])}: "
                        + link("prediction", "follow it and see the comparison", run=again.id), raw=True)
        return again

    def _reproduction_sections(self, info: RunInfo) -> list[w.Widget]:
        """How this re-run compares with the run it repeats, output by output."""
        try:
            report = self.lab.reproduction(info.id)
        except Exception as err:  # noqa: BLE001 - the rest of the page still shows
            return [h2("Reproduction"), w.HTML(f'<div class="lk-error">{esc(str(err))}</div>')]
        verdict = "reproduced" if report.reproduced else "NOT reproduced"
        counts = ", ".join(f"{n} {v}" for v, n in report.counts().items() if n) or "no outputs to compare"
        rows = [(o.name, o.verdict, f"{o.differing}/{o.elements}", f"{o.max_abs:.3g} {o.units}", f"{o.max_rel:.3g}",
                 o.tolerance, o.note) for o in report.outputs]
        return [h2("Reproduction"),
                w.HTML(f'<div class="lk-reproduction" data-reproduced="{str(report.reproduced).lower()}">'
                       f'<b>{esc(verdict)}</b> (compared with run {link("prediction", info.rerun_of or "", run=info.rerun_of)}'
                       f'): {esc(counts)}</div>'
                       + html_table(["output", "verdict", "differing", "max |diff|", "max rel", "tolerance", ""], rows))]

    @staticmethod
    def _failure_html(info: RunInfo) -> str:
        parts = ['<div class="lk-h2">Failure</div>', f'<div class="lk-error">{esc(info.error or "")}</div>']
        if info.failing_cell:
            parts.append(f'<div class="lk-muted">failing cell</div><pre class="lk-pre lk-failing-cell">'
                         f'{esc(info.failing_cell)}</pre>')
        return "".join(parts)

    def _prediction_sections(self, prediction: Prediction) -> list[w.Widget]:
        sections: list[w.Widget] = []
        plots = prediction.plots
        if plots:
            sections.append(h2("Plots"))
            images = [w.Image(value=p.read_bytes(), format="png", layout=w.Layout(width="480px"))
                      for p in plots]
            for image, path in zip(images, plots):
                image.add_class("lk-plot")
                image.add_class("lk-plot-" + path.stem)
            sections.append(w.HBox(images, layout=w.Layout(flex_flow="row wrap")))
        outputs = prediction.outputs
        if outputs:
            sections.append(h2("Outputs"))
            declared = self._declared_descriptions()
            rows = []
            for o in outputs.values():
                csv_path = prediction.folder / "outputs" / f"{o.name}.csv"
                download = data_link(f"{o.name}.csv", csv_path.read_bytes(), "text/csv", "csv") \
                    if csv_path.exists() else ""
                rows.append((f"<b>{esc(o.name)}</b>", esc(o.units), esc("×".join(map(str, o.shape)) or "scalar"),
                             esc(_value_text(o.values)), esc(o.description or declared.get(o.name, "")), download))
            sections.append(w.HTML(html_table(["output", "units", "shape", "value", "description", ""], rows,
                                              raw=True)))
        sections.append(h2("Downloads"))
        links = []
        if prediction.notebook.exists():
            links.append(data_link(f"{self.run_id[:8]}-notebook.ipynb", prediction.notebook.read_bytes(),
                                   file_mime("x.ipynb"), "executed notebook"))
        self.archive_link = w.HTML()
        archive_button = w.Button(description="Prepare archive (.zip)", icon="file-archive-o",
                                  layout=w.Layout(width="200px"))
        archive_button.on_click(guarded(self.message, lambda _: self.prepare_archive()))
        sections.append(w.HBox([w.HTML(" · ".join(links)), archive_button, self.archive_link],
                               layout=w.Layout(align_items="center")))
        try:
            provenance = prediction.provenance
        except (OSError, ValueError):
            provenance = {}
        if provenance:
            sections.append(h2("Provenance"))
            model, protocol = provenance.get("model", {}), provenance.get("protocol", {})
            rows = [("model", f'{model.get("name")} v{model.get("version")} ({str(model.get("commit", ""))[:10]}, '
                              f'{model.get("file")})'),
                    ("protocol", f'{protocol.get("name")} v{protocol.get("version")} '
                                 f'({str(protocol.get("commit", ""))[:10]}, {protocol.get("file")})'),
                    ("parameters", ", ".join(f"{k}={v!r}" for k, v in provenance.get("parameters", {}).items())
                     or "defaults"),
                    ("worker", provenance.get("worker", "")), ("finished", provenance.get("finished_at", ""))]
            rows += [(f"software: {name}", version) for name, version in provenance.get("software", {}).items()]
            sections.append(w.HTML(html_table(["", ""], rows)))
        timings = prediction.timings
        if timings:
            sections.append(h2("Timings"))
            sections.append(w.HTML(html_table(["step", "seconds"], [(k, f"{v:.3f}") for k, v in timings.items()],
                                              numeric=(1,))))
        log = prediction.log
        log_box = w.HTML(f'<pre class="lk-pre lk-log">{esc(log[-100_000:] or "(empty log)")}</pre>')
        accordion = w.Accordion(children=[log_box], titles=["Log"])
        accordion.selected_index = None
        sections.append(accordion)
        return sections

    def _declared_descriptions(self) -> dict[str, str]:
        """Output descriptions from the protocol's interface: notebooks often save outputs without one."""
        try:
            info = self.lab.status(self.run_id)
            interface = self.lab.interface(info.protocol, info.protocol_version)
        except Exception:
            return {}
        return {o.name: o.description for o in interface.outputs}

    def prepare_archive(self) -> bytes:
        """Zip the prediction folder and offer it as a download link."""
        info = self.info or self.lab.status(self.run_id)
        if not info.results_path:
            raise FileNotFoundError("this run stored no prediction")
        data = archive_bytes(self.lab.prediction(self.run_id).folder)
        self.archive_link.value = data_link(f"prediction-{self.run_id[:8]}.zip", data, "application/zip",
                                            f"prediction-{self.run_id[:8]}.zip ({len(data) // 1024} KiB)")
        return data


class PredictionPage:
    """The prediction page: the run named by ``?run=``, or a hint where to find one."""

    def __init__(self, lab: Lab, run: str = "") -> None:
        self.lab = lab
        if run:
            self.view: PredictionView | None = PredictionView(lab, run)
            self.widget = self.view.widget
        else:
            self.view = None
            hint = (f'<div class="lk-muted">No run chosen: open one from the {link("matrix", "experiment matrix")} '
                    f'or the {link("home", "home page")}.</div>')
            self.widget = page_box([header("prediction", lab, "Prediction"), w.HTML(hint)])
