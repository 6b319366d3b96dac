"""Pace one level of a block scan as the protocol does, then print the APD90 of the beats after it.

A block level that has not settled after its paces may alternate between two beats (or wander),
and the protocol reports only the beat after the last pace. This shows the next ones, so a miss
can be told apart from an alternation whose phase differs from the Web Lab's. ``--rel-tol-nudge``
makes the solver's relative tolerance that fraction larger: if a nudge of 0.1 % flips the phase,
the phase is set by rounding, not by the protocol (docs/validation.md, "alternans").

    python3 scripts/block_level_beats.py ../shared/webdata/models/decker_2009.cellml IKr 0.2
    python3 scripts/block_level_beats.py ../shared/webdata/models/decker_2009.cellml IKr 0.2 --rel-tol-nudge 0.002
"""
from __future__ import annotations

import argparse
from pathlib import Path

from labkit import sim
from labkit.sim import scans
from labkit.sim.simulation import ABS_TOL, REL_TOL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a CellML file")
    parser.add_argument("current", help="the blocked current: " + ", ".join(scans.BLOCKS))
    parser.add_argument("level", type=float, help="the remaining fraction of its conductance (0 is full block)")
    parser.add_argument("--paces", type=int, default=1000, help="the level's cap of paces (default 1000)")
    parser.add_argument("--beats", type=int, default=6, help="beats to show after them (default 6)")
    parser.add_argument("--period", type=float, default=1000.0, help="pacing period, ms")
    parser.add_argument("--rel-tol-nudge", type=float, default=0.0,
                        help="make the relative tolerance this fraction larger (0.001 is 0.1 %%)")
    args = parser.parse_args()

    block = scans.block_spec(args.current)
    model = sim.load_model(args.model)
    control = scans.make_input(model, block.term)
    model.replace_stimulus(period=args.period)
    cell = model.simulation()
    cell.myokit_simulation.set_tolerance(abs_tol=ABS_TOL, rel_tol=REL_TOL * (1 + args.rel_tol_nudge))
    # The scan the block notebook runs, for this one level: its beat is the protocol's recorded one.
    scan = scans.steady_state_scan(cell, lambda level: scans.set_raw_parameter(cell, block.term, control * level),
                                   [args.level], pacing_period=args.period, max_paces=args.paces,
                                   detail_duration=args.period)
    print(f"{model.name}, {block.name} at {args.level:g}: {scan.num_paces[0]} paces "
          f"({'steady' if scan.found[0] else 'not steady'}), {scan.seconds[0]:.0f} s")
    voltage, times = scan.voltage[0], scan.time
    for index in range(1, args.beats + 1):
        if index > 1:  # the next pace of the same train
            beat = cell.record(args.period)
            voltage, times = beat["membrane_voltage"].to_numpy(), beat["time"].to_numpy()
        apd90 = scans.first_apd90(voltage[None, :], times)[0]
        note = " (the protocol's recorded beat)" if index == 1 else ""
        print(f"beat {index}: APD90 {apd90:8.2f} ms, V at the end {voltage[-1]:6.1f} mV{note}")


if __name__ == "__main__":
    main()
