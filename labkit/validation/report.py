"""The validation report: an HTML page a scientist reads (with overlay plots of ours against the
reference) and machine-readable summaries (CSV and JSON)."""
from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .catalogue import PROTOCOLS  # noqa: E402
from .run import OutputResult  # noqa: E402


def summary_rows(results: list[OutputResult]) -> list[dict[str, object]]:
    rows = []
    for r in results:
        c = r.comparison
        rows.append({"model": r.reference.model, "protocol": r.reference.protocol, "output": r.reference.name,
                     "verdict": r.verdict, "kind": c.kind if c else "",
                     "max_abs_error": c.max_abs_error if c else None,
                     "max_rel_error": c.max_rel_error if c else None,
                     "failing_elements": c.failing_elements if c else None,
                     "elements": c.elements if c else int(r.reference.values.size),
                     "run": r.run_id, "source": "ledger" if r.ledger else ("lab" if r.run else ""),
                     "reason": r.reason})
    return rows


def pass_rate(results: list[OutputResult]) -> float:
    """Passes over all reference outputs: inapplicable and failed ones both count against it."""
    return sum(r.verdict == "pass" for r in results) / len(results) if results else 0.0


def _overlay(result: OutputResult, path: Path) -> bool:
    rule = PROTOCOLS[result.reference.protocol].outputs.get(result.reference.name)
    outputs = result.outputs
    if outputs is None or rule is None or rule.ours not in outputs:
        return False
    ours, ref = outputs[rule.ours].values, result.reference.values
    if ours.ndim == 2 and ours.shape != ref.shape and ours.T.shape == ref.shape:
        ours = ours.T
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
    x_ours = outputs[rule.x].values if rule.x in outputs else None
    for i, (o_row, r_row) in enumerate(zip(np.atleast_2d(ours), np.atleast_2d(ref))):
        xo = x_ours if x_ours is not None and x_ours.shape == o_row.shape else np.arange(o_row.size)
        xr = x_ours if x_ours is not None and x_ours.shape == r_row.shape else np.arange(r_row.size)
        ax.plot(xr, r_row, "o", ms=3, color="black", label="Web Lab" if i == 0 else None)
        ax.plot(xo, o_row, "-", color="tab:red", label="labkit" if i == 0 else None)
    ax.set_title(f"{result.reference.model}\n{result.reference.protocol}: {result.reference.name} "
                 f"({result.verdict})", fontsize=8)
    ax.set_xlabel(rule.x or "index", fontsize=8)
    ax.set_ylabel(f"{rule.ours} ({outputs[rule.ours].units})", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(results: list[OutputResult], folder: Path, *, plots: bool = True) -> Path:
    """Write report.html, summary.csv and summary.json into ``folder``; return the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(results)
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    counts = Counter(r.verdict for r in results)
    (folder / "summary.json").write_text(json.dumps(
        {"pass_rate": pass_rate(results), "outputs": len(results), "counts": dict(counts), "results": rows},
        indent=1, default=str))
    images = folder / "plots"
    images.mkdir(exist_ok=True)
    body = []
    for row, result in zip(rows, results):
        image = images / f"{row['model']}__{row['protocol']}__{row['output']}.png"
        has_plot = plots and _overlay(result, image)
        err = "" if row["max_abs_error"] is None else f"{row['max_abs_error']:.3g} / {row['max_rel_error']:.3g}"
        body.append(
            f"<tr class='{row['verdict']}'><td>{html.escape(str(row['model']))}</td>"
            f"<td>{html.escape(str(row['protocol']))}</td><td>{html.escape(str(row['output']))}</td>"
            f"<td>{row['verdict']}</td><td>{row['kind']}</td><td>{err}</td>"
            f"<td>{html.escape(str(row['reason']))}</td>"
            f"<td>{f'<img src=plots/{image.name} loading=lazy>' if has_plot else ''}</td></tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>labkit validation</title>
<style>body{{font-family:sans-serif}} td,th{{border-bottom:1px solid #ddd;padding:3px;font-size:13px}}
tr.pass td:nth-child(4){{color:green}} tr.fail td:nth-child(4){{color:#b00;font-weight:bold}}
tr.inapplicable td:nth-child(4){{color:#888}} img{{width:360px}}</style></head><body>
<h1>labkit against the Web Lab's reference results</h1>
<p>{counts.get('pass', 0)} of {len(results)} reference outputs pass ({100 * pass_rate(results):.1f} %);
{counts.get('fail', 0)} fail; {counts.get('inapplicable', 0)} inapplicable (they count as misses).
Tolerances: see docs/validation.md.</p>
<table><tr><th>model</th><th>protocol</th><th>output</th><th>verdict</th><th>kind</th>
<th>max abs / rel error</th><th>why</th><th>ours (line) vs reference (dots)</th></tr>
{''.join(body)}</table></body></html>"""
    report = folder / "report.html"
    report.write_text(page)
    return report
