"""Print the figures of docs/validation.md's results section from a validation's summary.csv.

The summary is the one ``labkit validate`` writes next to its report. Judged from the ledger alone
(a throwaway lab with no workers, ``--no-wait``), it covers every pair the ledger holds:

    cp docs/validation-ledger.json /tmp/ledger-copy.json
    python3 -m labkit --lab /tmp/scratch-lab validate --reference ../shared/webdata/reference \\
        --ledger /tmp/ledger-copy.json --no-wait --report /tmp/scratch-report
    python3 scripts/validation_results.py /tmp/scratch-report/summary.csv --ledger docs/validation-ledger.json

It prints markdown: the headline counts, what the issue's goal (95 %) still allows, a table by Web
Lab protocol, and every miss with its errors, for the text around them to be written by hand.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from labkit.validation.ledger import Ledger

GOAL = 0.95


def _misses(n: int) -> str:
    return "no more misses" if n <= 0 else f"{n} more miss" + ("" if n == 1 else "es")


def headline(summary: pd.DataFrame) -> str:
    counts = summary["verdict"].value_counts()
    total = len(summary)
    passed, pending = int(counts.get("pass", 0)), int(counts.get("pending", 0))
    judged = total - pending
    needed = math.ceil(GOAL * total)
    if not judged:
        return (f"None of the {total} outputs has been judged: the ledger holds no entry for this code "
                "(after a change to labkit/sim, see scripts/carry_over_ledger.py).")
    lines = [f"**{judged} of the {total} outputs have been judged and {passed} pass "
             f"({100 * passed / judged:.1f} % of those judged; {100 * passed / total:.1f} % of all).**"]
    other = {k: int(v) for k, v in counts.items() if k not in ("pass", "fail", "pending")}
    if other:
        lines.append("Other verdicts: " + ", ".join(f"{v} {k}" for k, v in sorted(other.items())) + ".")
    if pending:
        lines.append(f"{pending} outputs are pending. If every one of them passed, the pass rate would be "
                     f"{100 * (passed + pending) / total:.1f} %; the goal of {100 * GOAL:.0f} % "
                     f"({needed} of {total}) allows {_misses(passed + pending - needed)} among them.")
    else:
        verdict = "meets" if passed >= needed else "misses"
        lines.append(f"Nothing is pending: {passed} of {total} ({100 * passed / total:.1f} %) {verdict} "
                     f"the goal of {100 * GOAL:.0f} % ({needed} of {total}).")
    return "\n".join(lines)


def protocol_table(summary: pd.DataFrame) -> str:
    table = summary.pivot_table(index="protocol", columns="verdict", values="output", aggfunc="count", fill_value=0)
    columns = [c for c in ("pass", "fail", "pending", "inapplicable") if c in table.columns]
    rows = ["| Web Lab protocol | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for protocol, row in table.iterrows():
        rows.append(f"| {protocol} | " + " | ".join(str(int(row[c])) for c in columns) + " |")
    rows.append("| **all** | " + " | ".join(f"**{int(table[c].sum())}**" for c in columns) + " |")
    return "\n".join(rows)


def misses(summary: pd.DataFrame) -> str:
    failed = summary[summary["verdict"] == "fail"].sort_values(["model", "protocol", "output"])
    rows = ["| model | protocol | output | max abs error | max rel error | failing elements | reason |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in failed.iterrows():
        def number(value: object) -> str:
            return "" if pd.isna(value) else f"{float(value):.4g}"
        elements = "" if pd.isna(r["failing_elements"]) else f"{int(r['failing_elements'])} of {int(r['elements'])}"
        reason = "" if pd.isna(r["reason"]) else " ".join(str(r["reason"]).split()).replace("|", "/")[:120]
        rows.append(f"| {r['model']} | {r['protocol']} | {r['output']} | {number(r['max_abs_error'])} | "
                    f"{number(r['max_rel_error'])} | {elements} | {reason} |")
    return "\n".join(rows)


def ledger_line(path: Path) -> str:
    entries = Ledger.load(path).entries.values()
    hours = sum(e.seconds or 0.0 for e in entries) / 3600
    failed = sum(e.failed for e in entries)
    return (f"The ledger holds {len(entries)} predictions ({failed} of them failed runs), "
            f"{hours:.1f} worker-hours of runs.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path, help="summary.csv of a validation report")
    parser.add_argument("--ledger", type=Path, help="the ledger the validation judged from")
    args = parser.parse_args()
    summary = pd.read_csv(args.summary)
    parts = ([ledger_line(args.ledger)] if args.ledger else []) + [headline(summary), protocol_table(summary),
                                                                     misses(summary)]
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
