"""Compare the outputs two validation ledgers hold for the same (model, Web Lab protocol) pairs.

This is the check behind every carry-over (scripts/carry_over_ledger.py): run some pairs again with
the new code, then compare the new entries with the old ones, value for value, NaN for NaN:

    git show <commit before the change>:docs/validation-ledger.json > /tmp/ledger-old.json
    python3 scripts/compare_ledgers.py /tmp/ledger-old.json docs/validation-ledger.json --protocol ICaL

Pairs are compared when both ledgers hold them from different runs (an entry carried over keeps
its run, and is the same entry under a new key).
A pair that differs is listed with the largest difference of each output; the exit status is 1 if
any does, so it can gate a script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from labkit.validation.ledger import Ledger, LedgerEntry


def differences(old: LedgerEntry, new: LedgerEntry) -> list[str]:
    """What differs between two entries of one pair; empty when every output is identical."""
    if old.failed or new.failed:
        return [] if (old.failed, old.error) == (new.failed, new.error) else \
            [f"failed: {old.error or 'no'} -> {new.error or 'no'}"]
    if old.status != new.status:
        return [f"status: {old.status} -> {new.status}"]
    found = []
    for name in sorted(set(old.outputs) | set(new.outputs)):
        if name not in old.outputs or name not in new.outputs:
            found.append(f"{name}: only in the {'new' if name in new.outputs else 'old'} entry")
            continue
        a, b = old.outputs[name].values, new.outputs[name].values
        if a.shape != b.shape:
            found.append(f"{name}: shape {a.shape} -> {b.shape}")
        elif not np.array_equal(a, b, equal_nan=True):
            with np.errstate(invalid="ignore"):
                gap = np.nanmax(np.abs(a - b)) if np.isfinite(a - b).any() else float("nan")
            found.append(f"{name}: differs (largest difference {gap:.3g}; NaN at "
                         f"{int(np.isnan(a).sum())} -> {int(np.isnan(b).sum())} elements)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--protocol", action="append", help="only these Web Lab protocols (repeatable)")
    args = parser.parse_args()
    old, new = Ledger.load(args.old).entries, Ledger.load(args.new).entries
    pairs = sorted(p for p in set(old) & set(new) if old[p].run != new[p].run
                   and (not args.protocol or p[1] in args.protocol))
    changed = 0
    for pair in pairs:
        found = differences(old[pair], new[pair])
        if found:
            changed += 1
            print(f"{pair[0]} {pair[1]}:\n  " + "\n  ".join(found))
    print(f"{len(pairs)} pairs compared (run again); {len(pairs) - changed} identical, "
          f"{changed} differ")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
