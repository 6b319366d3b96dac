"""How labkit's objects show themselves in a notebook (IPython's display protocol, ``_repr_html_``).

A scientist in JupyterLab types ``lab.prediction(run_id)`` and should see the prediction, not a
dataclass repr: its status, a table of its outputs with units, and its plots. A run shows its status
and why it failed; a lab its contents. Everything a protocol or a user wrote (output names, units,
errors) is escaped: it is shown, never interpreted as HTML.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .outputs import OutputData
    from .prediction import Prediction

#: Plots embedded per prediction; the rest are listed by name (a scan can have dozens).
MAX_PLOTS = 6
#: Every status a run can have, in the order a lab lists its counts.
RUN_STATUSES = ("queued", "running", "success", "partial", "failed", "inapplicable", "cancelled")
#: Each status's (background, text colour, symbol): the one table the notebook display and the
#: dashboards (``labkit.dashboards.common``) colour statuses from.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "success": ("#2e7d32", "#ffffff", "✓"),
    "partial": ("#f9a825", "#222222", "◐"),
    "failed": ("#c62828", "#ffffff", "✗"),
    "inapplicable": ("#bdbdbd", "#333333", "–"),
    "running": ("#1565c0", "#ffffff", "▶"),
    "queued": ("#90caf9", "#0d2a4a", "…"),
    "cancelled": ("#795548", "#ffffff", "⊘"),
    "not run": ("#ffffff", "#888888", ""),
}


def _status(status: str) -> str:
    """A status as a badge in its colours (a status labkit does not know is shown plain)."""
    background, colour, _ = STATUS_STYLE.get(status, ("#eeeeee", "#222222", ""))
    return (f'<b style="background:{background};color:{colour};padding:0 0.4em;border-radius:3px">'
            f"{escape(status)}</b>")


def _value(output: OutputData) -> str:
    """A scalar as a number; an array as its shape and range."""
    values = np.asarray(output.values, dtype=float)
    if values.size == 1:
        return f"{values.reshape(-1)[0]:.6g}"
    finite = values[np.isfinite(values)]
    span = f"{finite.min():.4g} … {finite.max():.4g}" if finite.size else "all NaN"
    nan = f", {values.size - finite.size} NaN" if finite.size < values.size else ""
    return f"{'×'.join(map(str, values.shape))} values, {span}{nan}"


def outputs_table(outputs: Mapping[str, OutputData]) -> str:
    """An HTML table: one row per output with its units, value (or shape and range) and description."""
    rows = "".join(f"<tr><td><code>{escape(o.name)}</code></td><td>{escape(o.units)}</td>"
                   f"<td>{escape(_value(o))}</td><td>{escape(o.description)}</td></tr>"
                   for _, o in sorted(outputs.items()))
    return ("<table><thead><tr><th>output</th><th>units</th><th>value</th><th>description</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _images(plots: Sequence[Path]) -> str:
    shown = [f'<img alt="{escape(p.stem)}" style="max-width:480px" '
             f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"/>' for p in plots[:MAX_PLOTS]]
    more = (f"<p>{len(plots) - MAX_PLOTS} more plots in <code>{escape(str(plots[0].parent))}</code></p>"
            if len(plots) > MAX_PLOTS else "")
    return "<div>" + "".join(shown) + "</div>" + more


def prediction_html(prediction: Prediction) -> str:
    """The prediction: run id and status, the outputs table, the plots, and where its files are."""
    outputs = prediction.outputs
    parts = [f"<div><b>Prediction</b> of run <code>{escape(prediction.run_id)}</code>: {_status(prediction.status)}",
             outputs_table(outputs) if outputs else "<p>No outputs.</p>",
             _images(prediction.plots),
             f"<p>Files: <code>{escape(str(prediction.folder))}</code> (executed notebook, outputs, provenance)</p>"
             "</div>"]
    return "".join(parts)


def run_html(run: Any) -> str:
    """A run (``experiments.RunInfo``): what ran on what, its status, and the error line if it failed."""
    when = run.finished_at or run.started_at or run.created_at
    error = (f"<br/>{escape(run.error_line)}" if run.error_line else "") if run.status != "success" else ""
    missing = (f"<br/>missing terms: {escape(', '.join(run.missing_terms))}" if run.missing_terms else "")
    return (f"<div>Run <code>{escape(run.id)}</code>: protocol <b>{escape(run.protocol)}</b> "
            f"v{run.protocol_version} on model <b>{escape(run.model)}</b> v{run.model_version}: "
            f"{_status(run.status)} ({escape(when.strftime('%Y-%m-%d %H:%M'))}){error}{missing}</div>")


def lab_html(root: Path, user: str, entities: Mapping[str, int], runs: Mapping[str, int]) -> str:
    """A lab: where it is, who is looking, how many entities of each kind and runs of each status."""
    things = ", ".join(f"{n} {kind}s" for kind, n in entities.items())
    statuses = ", ".join(f"{n} {escape(status)}" for status, n in runs.items() if n) or "none yet"
    return (f"<div><b>labkit lab</b> <code>{escape(str(root))}</code> as <b>{escape(user)}</b>: "
            f"{things}; runs: {statuses}</div>")
