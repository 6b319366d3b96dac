"""Carry validation-ledger entries over changes to labkit that cannot alter them.

The ledger keys every prediction by labkit's simulation code and by the protocol notebook's bytes,
so a change to ``labkit/sim`` makes every entry stale, and the full validation (many worker-hours)
would have to run again. Some changes provably leave certain runs bit for bit unchanged. This script
re-keys exactly those entries, from the code and notebooks at ``--from-commit`` to those of this
checkout, and leaves every other changed entry stale, to be run again by the next
``labkit validate --ledger``.

``--change solver-failure`` (the default) is for changes that alter nothing but what happens after
the solver fails. The ones so far:

- the solver's error-test limit, from SUNDIALS' 7 to the Web Lab's 15 (``labkit/sim/solver.py``):
  a step that passes within 7 error-test failures takes the same path under a limit of 15;
- steady-state restitution keeping the cycle lengths completed before a solver failure, where it
  used to fail (``labkit/sim/restitution.py`` and its notebook).
- the line of a solver error quoted in the warnings of the clamps and of restitution, now picked
  by one helper (``labkit/sim/solver.py``, ``failure_reason``): it changes words, not numbers.
- the run sandbox (``labkit/sim/cache.py``: where compiled simulations are kept, one folder per
  model version, and who writes them): it changes no number.

A run that met a solver failure under the old code failed, so every successful entry made by such a
protocol is unchanged. Failed runs kept in the ledger are left stale: the change may let them
finish. So are the voltage-clamp notebooks' entries: they record NaN for a sweep the solver
abandons and finish.

``--change analysis-failure`` is for changes that alter nothing but what happens where the APD
analysis used to raise (a trace with no action potential), and when a notebook saves each output
(2026-12-06: ``labkit/sim/analysis.py`` returns NaN there, and for traces holding NaN samples;
steady pacing and S1-S2 save as they go).
A run whose analysis raised failed and was never kept, so every successful entry was computed on
traces the new code measures with the same arithmetic and saves unchanged: all of them are carried,
the voltage clamps' too (they never call the analysis). Failed entries are left stale.

``--sweep-record FILE`` carries the sweep's record of verdicts (``validate --sweep --ledger``) over
the same change by the same rules: a solver failure is left stale (the change may let it finish), and
so, for ``solver-failure`` changes, are the voltage clamps' verdicts.

Run it right after such a change, then check some carried pairs by running them again
(docs/validation.md says how this was done):

    python3 scripts/carry_over_ledger.py --from-commit f96b555 --reference ../shared/webdata/reference \\
        --ledger docs/validation-ledger.json
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from labkit.validation.catalogue import PROTOCOLS
from labkit.validation.ledger import SIMULATION_CODE, Ledger, code_fingerprint
from labkit.validation.reference import reference_outputs
from labkit.validation.run import ledger_keys
from labkit.validation.sweep import SOLVER, sweep_keys
from labkit.validation.sweep_record import SweepRecord

REPO = Path(__file__).resolve().parents[1]


def _export(commit: str, folder: str, destination: Path, wanted: Callable[[Path], bool]) -> None:
    """Write the files under ``folder`` at ``commit`` that ``wanted(relative path)`` accepts."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", commit, folder + "/"],
                            check=True, capture_output=True, text=True).stdout.split()
    for name in listed:
        relative = Path(name).relative_to(folder)
        if wanted(relative):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{name}"],
                                              check=True, capture_output=True).stdout)


def tolerates_solver_failures(notebook: Path) -> bool:
    """Does this protocol notebook finish (with NaN) where the solver gives up?"""
    return b"VoltageClampCell" in notebook.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-commit", required=True, help="the commit whose code the entries were made with")
    parser.add_argument("--reference", type=Path, required=True, help="the reference folder")
    parser.add_argument("--models", type=Path, help="folder of <model>.cellml (default: beside the reference)")
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--sweep-record", type=Path, help="also carry this sweep record of verdicts over")
    parser.add_argument("--change", choices=("solver-failure", "analysis-failure"), default="solver-failure",
                        help="what the change alters (see above); it decides which entries are carried")
    args = parser.parse_args()
    models = args.models or args.reference.parent / "models"
    references = reference_outputs(args.reference)
    with tempfile.TemporaryDirectory() as folder:
        old_package, old_notebooks = Path(folder) / "labkit", Path(folder) / "notebooks"
        _export(args.from_commit, "labkit", old_package,
                lambda path: any(path.match(pattern) for pattern in SIMULATION_CODE))
        _export(args.from_commit, "notebooks/protocols", old_notebooks, lambda path: path.suffix == ".ipynb")
        old = ledger_keys(references, models, code_fingerprint(old_package), old_notebooks)
        new = ledger_keys(references, models)
        ledger = Ledger.load(args.ledger)
        carried, left, same, other = [], [], [], []
        for pair, entry in sorted(ledger.entries.items()):
            if entry.key != old.get(pair):
                other.append(pair)  # made with other code or inputs: not this script's business
            elif new[pair] == old[pair]:
                same.append(pair)
            elif entry.failed or (args.change == "solver-failure" and
                                  tolerates_solver_failures(old_notebooks / PROTOCOLS[entry.protocol].notebook)):
                left.append(pair)
            else:
                ledger.entries[pair] = dataclasses.replace(entry, key=new[pair])
                carried.append(pair)
        if args.sweep_record:
            _carry_record(args, models, code_fingerprint(old_package), old_notebooks)
    ledger.save()
    print(f"carried over {len(carried)} entries; left stale {len(left)} "
          f"{'voltage-clamp or ' if args.change == 'solver-failure' else ''}failed entries "
          "(to run again); "
          f"{len(same)} unchanged; {len(other)} were not made with the code of {args.from_commit}")


def _carry_record(args: argparse.Namespace, models: Path, old_code: str, old_notebooks: Path) -> None:
    """Re-key the sweep record's verdicts made with the old code that the change cannot alter."""
    record = SweepRecord.load(args.sweep_record)
    pairs = sorted(record.entries)
    names, protocols = sorted({m for m, _ in pairs}), sorted({p for _, p in pairs})
    old = sweep_keys(models, names, protocols, old_code, old_notebooks)
    new = sweep_keys(models, names, protocols)
    carried, left, other = 0, 0, 0
    for pair in pairs:
        entry = record.entries[pair]
        if entry.key != old[pair]:
            other += 1
        elif entry.verdict == SOLVER or (args.change == "solver-failure" and
                                         tolerates_solver_failures(old_notebooks / PROTOCOLS[pair[1]].notebook)):
            left += 1
        else:
            record.entries[pair] = dataclasses.replace(entry, key=new[pair])
            carried += 1
    record.save()
    print(f"sweep record: carried over {carried} verdicts; left stale {left}; {other} were not made with the "
          f"code of {args.from_commit}")


if __name__ == "__main__":
    main()
