"""Time a run takes inside the bubblewrap sandbox (labkit/runner/sandbox.py) compared with the
same run with no sandbox (``trusted_single_user=True``), both measured in the same run:

    python3 bench/sandbox_overhead.py [--quick] [--repeat 1] [--workers 1] [--keep DIR]

Two labs are built in a temporary folder with the demo's models and the protocols of the demo's first
matrix (``labkit.demo.build.seed`` and ``FIRST_MATRIX``: steady pacing and the calcium transient);
the sandboxed one has default settings, the baseline sets ``trusted_single_user``. Each gets
``--workers`` workers (default 1, so its runs do not compete) and runs every compatible
(model, protocol) pair of that matrix with default parameters, ``--repeat`` times. ``--quick`` runs
one pair only (Beeler-Reuter 1977 x steady pacing), about a minute.

The labs take turns: ``--workers`` pairs go to one lab, then the same pairs to the other, the first
lab alternating from one batch to the next (ABBA), and a batch starts only when the other lab's
worker has finished everything (including a sandboxed worker's compiles for the cache after the
run). So only one lab is busy at a time and slow drifts in the machine's load affect both.

The times are the runner's own (timings.json of each prediction, labkit/runner/execute.py):
``setup_s`` (plan, scratch folder, inputs, sandbox session), ``execute_s`` (papermill and the
kernel), ``collect_s`` and ``total_s``; queueing is not included. Each lab has its own
compiled-simulation cache (``LABKIT_SIM_CACHE`` is unset for the workers), so in the first repeat
both compile each model once. The script prints every run, then per phase the medians in each lab,
the median of the paired differences (sandboxed - baseline) and the ratio of the medians.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

import labkit
from labkit.demo.build import FIRST_MATRIX, seed
from labkit.experiments import RunInfo
from labkit.runner.sandbox import INSIDE_INPUTS, unavailable_reason

PHASES = ("setup_s", "execute_s", "collect_s", "total_s")
QUICK_PAIR = ("beeler_reuter_1977", "steady_pacing")
LABS = (("sandboxed", {}), ("baseline", {"trusted_single_user": True}))


@dataclass
class Timed:
    """One finished run and what the runner measured."""

    lab: str
    repeat: int
    model: str
    protocol: str
    status: str
    timings: dict[str, float]
    sandboxed: bool | None  # whether the executed notebook saw the sandbox's paths
    error: str = ""


def build_lab(root: Path, **settings: object) -> labkit.Lab:
    lab = labkit.Lab.open(root, **settings)
    seed(lab)
    return lab


def matrix_pairs(lab: labkit.Lab) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(compatible, inapplicable) (model, protocol) pairs of the demo's first matrix, protocol first
    as ``Lab.run_matrix`` orders them."""
    pairs, skipped = [], []
    for protocol in FIRST_MATRIX:
        for model in lab.names("model"):
            (pairs if lab.compatibility(model, protocol).compatible else skipped).append((model, protocol))
    return pairs, skipped


def wait_settled(lab: labkit.Lab, run_ids: list[str], timeout: float = 300.0) -> None:
    """Block until the worker's task for each run has returned (its log says ``run ID: status``): a
    sandboxed worker compiles for the cache after it has reported the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = "".join(p.read_text(errors="replace") for p in lab.settings.logs.glob("worker*.log"))
        if all(f"run {r}: " in logs for r in run_ids):
            return
        time.sleep(0.2)
    tqdm.write(f"warning: the workers of {lab.settings.root.name} had not logged the end of "
               f"{len(run_ids)} runs after {timeout:g} s; going on")


def timed(lab: labkit.Lab, label: str, repeat: int, info: RunInfo) -> Timed:
    timings, sandboxed = {}, None
    if info.results_path:
        prediction = lab.prediction(info.id)
        timings = prediction.timings
        if prediction.notebook.exists():
            sandboxed = str(INSIDE_INPUTS) in prediction.notebook.read_text(errors="replace")
    return Timed(label, repeat, info.model, info.protocol, info.status, timings, sandboxed, info.error_line)


def run_batch(lab: labkit.Lab, label: str, repeat: int, pairs: list[tuple[str, str]],
              timeout: float) -> list[Timed]:
    runs = [lab.run(model, protocol) for model, protocol in pairs]
    done = lab.wait(runs, timeout=timeout)
    wait_settled(lab, [r.id for r in done])
    return [timed(lab, label, repeat, info) for info in done]


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(results: list[Timed]) -> None:
    ok = ("success", "partial")
    by_key = {(t.lab, t.repeat, t.model, t.protocol): t for t in results}
    keys = sorted({(t.repeat, t.model, t.protocol) for t in results})
    print()
    print(f"{'rep':>3}  {'model':<22} {'protocol':<18} {'sandboxed':>10} {'baseline':>10} {'diff':>8}   "
          f"execute_s sandboxed / baseline")
    paired: list[tuple[Timed, Timed]] = []
    for repeat, model, protocol in keys:
        s, b = by_key.get(("sandboxed", repeat, model, protocol)), by_key.get(("baseline", repeat, model, protocol))
        total = [t.timings.get("total_s") if t and t.status in ok else None for t in (s, b)]
        execute = [t.timings.get("execute_s") if t and t.status in ok else None for t in (s, b)]
        diff = total[0] - total[1] if None not in total else None
        if diff is not None:
            paired.append((s, b))
        print(f"{repeat:>3}  {model:<22} {protocol:<18} {fmt(total[0]):>10} {fmt(total[1]):>10} "
              f"{fmt(diff, signed=True):>8}   {fmt(execute[0])} / {fmt(execute[1])}")
        for t in (s, b):
            if t and t.status not in ok:
                print(f"     {t.lab} run {t.status}: {t.error[:300]}")
    print()
    print(f"{len(paired)} matched (model, protocol, repeat) pairs")
    if not paired:
        return
    print(f"{'phase':<10} {'sandboxed':>10} {'baseline':>10} {'median diff':>12} {'ratio':>7}   (medians, s)")
    for phase in PHASES:
        both = [(s.timings[phase], b.timings[phase]) for s, b in paired if phase in s.timings and phase in b.timings]
        if not both:
            continue
        ms, mb = median([x for x, _ in both]), median([y for _, y in both])
        diff = median([x - y for x, y in both])
        ratio = f"{ms / mb:.3f}" if mb else "-"
        print(f"{phase:<10} {fmt(ms):>10} {fmt(mb):>10} {fmt(diff, signed=True):>12} {ratio:>7}")
    s_total = median([s.timings["total_s"] for s, _ in paired])
    b_total = median([b.timings["total_s"] for _, b in paired])
    d_total = median([s.timings["total_s"] - b.timings["total_s"] for s, b in paired])
    print(f"sandbox overhead per run: median {d_total:+.3f} s of total_s; ratio of medians "
          f"{s_total / b_total:.3f} (sandboxed / baseline)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one pair only: beeler_reuter_1977 x steady_pacing")
    parser.add_argument("--repeat", type=int, default=1, help="run the matrix this many times on each lab")
    parser.add_argument("--workers", type=int, default=1, help="workers per lab (and runs per batch)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a batch may take")
    parser.add_argument("--keep", type=Path, default=None, help="build the labs here and keep them")
    args = parser.parse_args(argv)

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"this machine cannot sandbox runs, so there is nothing to compare: {reason}")
    os.environ.pop("LABKIT_SIM_CACHE", None)  # each lab compiles into its own cache, as deployed
    folder = args.keep or Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    labs: dict[str, labkit.Lab] = {}
    results: list[Timed] = []
    try:
        start = time.perf_counter()
        for label, settings in LABS:
            labs[label] = build_lab(folder / label, **settings)
        pairs, skipped = matrix_pairs(labs["sandboxed"])
        if args.quick:
            pairs = [QUICK_PAIR]
        print(f"labs built in {time.perf_counter() - start:.1f} s ({folder}); {os.cpu_count()} cores, "
              f"{args.workers} worker(s) per lab, {args.repeat} repeat(s)")
        print(f"pairs: {', '.join(f'{m} x {p}' for m, p in pairs)}"
              + (f" (inapplicable, not run: {', '.join(f'{m} x {p}' for m, p in skipped)})"
                 if skipped and not args.quick else ""), flush=True)
        start = time.perf_counter()
        for lab in labs.values():
            lab.start_workers(args.workers)
        print(f"workers ready in {time.perf_counter() - start:.1f} s", flush=True)

        batches = [pairs[i:i + args.workers] for i in range(0, len(pairs), args.workers)]
        bar = tqdm(total=2 * len(pairs) * args.repeat, desc="runs", unit="run", file=sys.stderr)
        turn = 0
        try:
            for repeat in range(1, args.repeat + 1):
                for batch in batches:
                    order = LABS if turn % 2 == 0 else LABS[::-1]
                    turn += 1
                    for label, _ in order:
                        for t in run_batch(labs[label], label, repeat, batch, args.timeout):
                            results.append(t)
                            bar.update(1)
                            wrong = t.sandboxed is not None and t.sandboxed != (label == "sandboxed")
                            tqdm.write(f"  {label:<9} rep {repeat} {t.model} x {t.protocol}: {t.status}, total "
                                       f"{fmt(t.timings.get('total_s'))} s, execute {fmt(t.timings.get('execute_s'))} s"
                                       + ("  (WARNING: not the expected launcher)" if wrong else ""))
        finally:
            bar.close()
    finally:
        for lab in labs.values():
            lab.stop_workers()
            lab.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    report(results)


if __name__ == "__main__":
    sys.exit(main())
