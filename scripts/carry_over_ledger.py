"""Carry validation-ledger entries over a change to labkit's simulation code that cannot alter them.

The ledger keys every prediction by labkit's simulation code, so any change to ``labkit/sim`` makes
every entry stale, and the full validation (many worker-hours) would have to run again. Some changes
provably leave certain runs bit for bit unchanged. This script re-keys exactly those entries, from
the code at ``--from-commit`` to the code in this checkout, and leaves every other entry stale, to be
run again by the next ``labkit validate --ledger``.

It knows one such change, the only one so far: raising the solver's error-test limit from
SUNDIALS' 7 to the Web Lab's 15 (``labkit/sim/solver.py``). A step that passes within 7 error-test
failures takes the same path under a limit of 15; a run that needed more failed under the old code.
So every run that finished without a solver failure is unchanged. Every protocol notebook fails on a
solver failure, and a failed run is never in the ledger, except the voltage-clamp notebooks: they
record NaN for a sweep the solver abandons and go on. Their entries are left stale.

Run it once, right after such a change, then check a few carried pairs by running them again
(docs/validation.md says how this was done):

    python3 scripts/carry_over_ledger.py --from-commit f96b555 --reference ../shared/webdata/reference \\
        --ledger docs/validation-ledger.json
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
from pathlib import Path

from labkit.validation.catalogue import PROTOCOLS
from labkit.validation.ledger import SIMULATION_CODE, Ledger, code_fingerprint
from labkit.validation.reference import reference_outputs
from labkit.validation.run import NOTEBOOKS, ledger_keys

REPO = Path(__file__).resolve().parents[1]


def fingerprint_at(commit: str) -> str:
    """The code fingerprint labkit had at ``commit``: its simulation files, written out and hashed."""
    with tempfile.TemporaryDirectory() as folder:
        package = Path(folder) / "labkit"
        listed = subprocess.run(["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", commit, "labkit/"],
                                check=True, capture_output=True, text=True).stdout.split()
        for name in listed:
            relative = Path(name).relative_to("labkit")
            if any(relative.match(pattern) for pattern in SIMULATION_CODE):
                target = package / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{name}"],
                                                  check=True, capture_output=True).stdout)
        return code_fingerprint(package)


def tolerates_solver_failures(protocol: str) -> bool:
    """Does this Web Lab protocol's notebook finish (with NaN) where the solver gives up?"""
    return b"VoltageClampCell" in (NOTEBOOKS / PROTOCOLS[protocol].notebook).read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-commit", required=True, help="the commit whose code the entries were made with")
    parser.add_argument("--reference", type=Path, required=True, help="the reference folder")
    parser.add_argument("--models", type=Path, help="folder of <model>.cellml (default: beside the reference)")
    parser.add_argument("--ledger", type=Path, required=True)
    args = parser.parse_args()
    models = args.models or args.reference.parent / "models"
    references = reference_outputs(args.reference)
    old = ledger_keys(references, models, fingerprint_at(args.from_commit))
    new = ledger_keys(references, models)
    ledger = Ledger.load(args.ledger)
    carried, left, other = [], [], []
    for pair, entry in sorted(ledger.entries.items()):
        if entry.key != old.get(pair):
            other.append(pair)  # made with other code or inputs: not this script's business
        elif tolerates_solver_failures(entry.protocol):
            left.append(pair)
        else:
            ledger.entries[pair] = dataclasses.replace(entry, key=new[pair])
            carried.append(pair)
    ledger.save()
    print(f"carried over {len(carried)} entries; left stale {len(left)} voltage-clamp entries "
          f"(to run again); {len(other)} entries were not made with the code of {args.from_commit}")


if __name__ == "__main__":
    main()
