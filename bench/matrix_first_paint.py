"""Time to first paint of the experiment matrix page, for a lab of 100 models x 20 protocols against a
baseline lab of 10 x 5 measured in the same run (so the ratio does not depend on the machine).

    python bench/matrix_first_paint.py [--models 100] [--protocols 20] [--repeats 3] [--keep DIR]

Entities are synthesized cheaply: copies of the demo's Hodgkin-Huxley CellML model under other names
and a tiny protocol notebook under other names. Every (model, protocol) pair gets a run row with a
status (success, partial, failed, inapplicable, running, queued, or none), written through the store's
tables in one transaction: no simulation runs. Voilà serves the dashboards with preheated kernels;
Debian's Chromium (Playwright) loads ``matrix.ipynb`` and the clock stops when the first page of cells
shows its statuses. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_raw_cell

import labkit
from labkit.dashboards.matrix import MatrixPage
from labkit.dashboards.serve import DashboardServer
from labkit.demo.build import DEMO_MODELS
from labkit.store import orm

INTERFACE = """title: Bench protocol
description: Writes one output.
requires: [membrane_voltage]
outputs:
  peak: {units: mV, description: a number}
"""
STATUSES = ("success", "success", "success", "partial", "failed", "inapplicable", "running", "queued", None)


def protocol_bytes() -> bytes:
    params = new_code_cell('model_path = "model.cellml"\noutput_dir = "outputs"\n')
    params.metadata["tags"] = ["parameters"]
    iface = new_raw_cell(INTERFACE)
    iface.metadata["tags"] = ["interface"]
    body = new_code_cell("from labkit.results import OutputWriter\nOutputWriter(output_dir).save('peak', 1.0, units='mV')")
    nb = new_notebook(cells=[iface, params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb).encode()


def build_lab(root: Path, n_models: int, n_protocols: int, seed: int = 1) -> Path:
    """A lab with ``n_models`` x ``n_protocols`` entities and a run row for most pairs."""
    model = (DEMO_MODELS / "hodgkin_huxley_1952.cellml").read_bytes()
    notebook = protocol_bytes()
    with labkit.Lab.open(root) as lab:
        for i in range(n_models):
            lab.add_model({"model.cellml": model}, name=f"model_{i:03d}")
        for j in range(n_protocols):
            lab.add_protocol({"protocol.ipynb": notebook}, name=f"protocol_{j:02d}")
        rng = random.Random(seed)
        models = [lab.version("model", n).id for n in lab.names("model")]
        protocols = [lab.version("protocol", n).id for n in lab.names("protocol")]
        with lab.db.session() as s:
            for mv in models:
                for pv in protocols:
                    status = rng.choice(STATUSES)
                    if status is None:
                        continue
                    experiment = orm.Experiment(model_version_id=mv, protocol_version_id=pv)
                    s.add(experiment)
                    s.flush()
                    s.add(orm.Run(id=str(uuid.uuid4()), experiment_id=experiment.id, parameters={}, status=status,
                                  time_limit=600.0, queue="labkit", created_by="bench"))
    return root


def python_build_time(root: Path, repeats: int) -> float:
    """Median seconds to build the matrix page's widgets in-process (no browser)."""
    times = []
    with labkit.Lab.open(root) as lab:
        for _ in range(repeats):
            start = time.perf_counter()
            MatrixPage(lab, live=False)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _pool_filled(log: Path, count: int) -> bool:
    """Voilà has (re)heated the matrix page's kernel ``count`` times, and every other page's once (so
    the first visit does not compete with five kernels importing labkit)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    pages = {line.split("Kernel pool of ")[1].split(" ")[0] for line in text.splitlines() if "Kernel pool of" in line}
    return len(pages) >= 5 and text.count("Kernel pool of matrix.ipynb is filled") >= count


def first_paint(root: Path, repeats: int) -> list[float]:
    """Seconds from navigation to a painted first page of the matrix, in Chromium, each with a
    preheated kernel (the pool is refilled between visits)."""
    from playwright.sync_api import sync_playwright
    with labkit.Lab.open(root) as lab:
        settings = lab.settings
    log = root / "logs" / "bench-voila.log"
    log.unlink(missing_ok=True)
    times = []
    with DashboardServer(settings, log=log, pool_size=1) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for visit in range(repeats):
                deadline = time.monotonic() + 180
                while not _pool_filled(log, visit + 1) and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(2.0)  # let the kernel that just heated go idle
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(server.page_url("matrix.ipynb"), wait_until="commit", timeout=180_000)
                page.wait_for_selector(".lk-cell.lk-status-success", timeout=180_000)
                times.append(time.perf_counter() - start)
                page.close()
        finally:
            browser.close()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--protocols", type=int, default=20)
    parser.add_argument("--baseline-models", type=int, default=10)
    parser.add_argument("--baseline-protocols", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="build the labs here and keep them")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    results = {}
    for label, n_models, n_protocols in (("baseline", args.baseline_models, args.baseline_protocols),
                                         ("large", args.models, args.protocols)):
        root = folder / f"lab-{n_models}x{n_protocols}"
        start = time.perf_counter()
        if not (root / "labkit.sqlite").exists():
            build_lab(root, n_models, n_protocols)
        print(f"{label}: {n_models} models x {n_protocols} protocols built in {time.perf_counter() - start:.1f} s "
              f"({root})", flush=True)
        build = python_build_time(root, args.repeats)
        paints = first_paint(root, args.repeats)
        results[label] = statistics.median(paints)
        print(f"{label}: widgets built in {build:.3f} s (median, in-process); first paint in Chromium "
              f"{statistics.median(paints):.2f} s (median of {', '.join(f'{t:.2f}' for t in paints)})", flush=True)
    ratio = results["large"] / results["baseline"]
    print(f"matrix first paint: {results['large']:.2f} s for {args.models} x {args.protocols}, "
          f"{results['baseline']:.2f} s for {args.baseline_models} x {args.baseline_protocols}: ratio {ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
