"""Did a re-run reproduce a prediction? Output by output: identical, within the protocol's tolerance,
or different, with the figures that say by how much.

An element of a re-run's output ``new`` reproduces the original's ``old`` when
``|new - old| <= abs + rel * |old|``, with ``(abs, rel)`` the output's declared ``tolerance`` in the
protocol's interface. An output that declares none gets ``rel = 1e-6`` and ``abs`` one millionth of
its largest magnitude: what solver round-off on another machine may change, and nothing more. NaN
reproduces NaN at the same element; NaN on one side only, other units or another shape is different.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..protocols.interface import Interface
from .outputs import OutputData
from .prediction import PROTOCOL_FOLDER, RERUN_OUTPUTS, Prediction

DEFAULT_REL = 1e-6
VERDICTS = ("identical", "within tolerance", "different", "missing")


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of a re-run compares with the original's."""

    name: str
    verdict: str  # one of VERDICTS
    units: str
    elements: int = 0
    differing: int = 0  # elements outside the tolerance
    max_abs: float = 0.0
    max_rel: float = 0.0
    tolerance: str = ""
    note: str = ""

    @property
    def reproduced(self) -> bool:
        return self.verdict in ("identical", "within tolerance")


@dataclass(frozen=True)
class Reproduction:
    """A re-run (``rerun``) of ``original``, compared output by output."""

    original: str
    rerun: str
    rerun_status: str
    outputs: tuple[OutputAgreement, ...]

    @property
    def reproduced(self) -> bool:
        """Every output the original has is there again, identical or within tolerance."""
        return bool(self.outputs) and all(o.reproduced for o in self.outputs)

    def counts(self) -> dict[str, int]:
        return {v: sum(o.verdict == v for o in self.outputs) for v in VERDICTS}

    def table(self) -> str:
        """A plain-text table, one line per output (what `labkit rerun` prints)."""
        width = max([len(o.name) for o in self.outputs] + [6])
        lines = [f"{'output':<{width}}  {'verdict':<16}  {'differing':>12}  {'max |diff|':>11}  {'max rel':>9}  tolerance"]
        for o in self.outputs:
            lines.append(f"{o.name:<{width}}  {o.verdict:<16}  {f'{o.differing}/{o.elements}':>12}  "
                         f"{o.max_abs:>11.3g}  {o.max_rel:>9.3g}  {o.tolerance}{'  ' + o.note if o.note else ''}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(o.name)}</td><td>{html.escape(o.verdict)}</td><td>{o.differing}/{o.elements}</td>"
            f"<td>{o.max_abs:.3g} {html.escape(o.units)}</td><td>{o.max_rel:.3g}</td>"
            f"<td>{html.escape(o.tolerance)}</td><td>{html.escape(o.note)}</td></tr>" for o in self.outputs)
        verdict = "reproduced" if self.reproduced else "not reproduced"
        return (f"<div><b>Re-run {html.escape(self.rerun)} of {html.escape(self.original)}: {verdict}</b>"
                f"<table><tr><th>output</th><th>verdict</th><th>differing</th><th>max |diff|</th>"
                f"<th>max rel</th><th>tolerance</th><th></th></tr>{rows}</table></div>")


def _tolerance(spec_tolerance: tuple[float, float] | None, old: np.ndarray) -> tuple[float, float, str]:
    if spec_tolerance is not None:
        abs_tol, rel_tol = spec_tolerance
        return abs_tol, rel_tol, f"abs {abs_tol:g}, rel {rel_tol:g} (the protocol's)"
    finite = np.abs(old[np.isfinite(old)])
    scale = float(finite.max()) if finite.size else 0.0
    return DEFAULT_REL * scale, DEFAULT_REL, f"abs {DEFAULT_REL * scale:.3g}, rel {DEFAULT_REL:g} (default)"


def compare_output(old: OutputData, new: OutputData | None, spec_tolerance: tuple[float, float] | None = None
                   ) -> OutputAgreement:
    """Compare one output of a re-run (``new``) with the original's (``old``)."""
    if new is None:
        return OutputAgreement(old.name, "missing", old.units, old.values.size, old.values.size,
                               note="the re-run did not produce it")
    a, b = np.asarray(old.values, dtype=float), np.asarray(new.values, dtype=float)
    if new.units != old.units:
        return OutputAgreement(old.name, "different", old.units, a.size, a.size,
                               note=f"units {new.units!r} instead of {old.units!r}")
    if a.shape != b.shape:
        return OutputAgreement(old.name, "different", old.units, a.size, a.size,
                               note=f"shape {list(b.shape)} instead of {list(a.shape)}")
    abs_tol, rel_tol, described = _tolerance(spec_tolerance, a)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.where(both_nan, 0.0, np.abs(b - a))
        relative = np.where(a != 0, error / np.abs(a), np.where(error == 0, 0.0, np.inf))
        bad = ~(error <= abs_tol + rel_tol * np.abs(a))  # NaN on one side only is never within
    known_error, known_rel = error[~np.isnan(error)], relative[~np.isnan(relative)]  # NaN: one side only
    max_abs = float(known_error.max()) if known_error.size else 0.0
    max_rel = float(known_rel.max()) if known_rel.size else 0.0
    identical = np.array_equal(a, b, equal_nan=True)
    verdict = "identical" if identical else ("different" if bad.any() else "within tolerance")
    return OutputAgreement(old.name, verdict, old.units, int(a.size), int(bad.sum()), max_abs, max_rel, described,
                           "NaN on one side only" if (np.isnan(a) ^ np.isnan(b)).any() else "")


def _agreements(old: dict[str, OutputData], new: dict[str, OutputData], interface: Interface | None
                ) -> tuple[OutputAgreement, ...]:
    """Every output of ``old`` against ``new``; outputs only ``new`` has are different: the same
    inputs gave something the original never saved."""
    agreements = []
    for name in sorted(old):
        spec = interface.output(name) if interface else None
        agreements.append(compare_output(old[name], new.get(name), spec.tolerance if spec else None))
    for name in sorted(set(new) - set(old)):
        agreements.append(OutputAgreement(name, "different", new[name].units, new[name].values.size,
                                          new[name].values.size, note="only the re-run produced it"))
    return tuple(agreements)


def compare_predictions(original: Prediction, rerun: Prediction | None, interface: Interface, *,
                        rerun_id: str = "", rerun_status: str = "") -> Reproduction:
    """Every output of ``original``, compared with ``rerun``'s (None: a re-run that saved nothing)."""
    agreements = _agreements(original.outputs, rerun.outputs if rerun is not None else {}, interface)
    return Reproduction(original.run_id, rerun.run_id if rerun else rerun_id,
                        rerun.status if rerun else rerun_status, agreements)


def compare_folders(original: Path, rerun: Path, interface: Interface | None = None) -> Reproduction:
    """Compare two output folders (``outputs/`` and ``rerun-outputs/`` of a prediction folder, say)."""
    from .outputs import read_outputs
    new = read_outputs(rerun) if rerun.is_dir() else {}
    return Reproduction(str(original), str(rerun), "", _agreements(read_outputs(original), new, interface))


def main(argv: list[str] | None = None) -> int:
    """``python -m labkit.results.reproduce FOLDER``: did re-executing a prediction folder's notebook
    (into ``rerun-outputs/``) reproduce its stored ``outputs/``? Tolerances come from the protocol
    notebook kept in ``inputs/protocol/``. Exit status 0 if reproduced, 1 if not."""
    import argparse

    from ..protocols.check import check_protocol

    parser = argparse.ArgumentParser(prog="python -m labkit.results.reproduce", description=main.__doc__)
    parser.add_argument("folder", type=Path, help="a prediction folder (or an export of one)")
    args = parser.parse_args(argv)
    folder: Path = args.folder
    if not (folder / "outputs").is_dir():
        parser.error(f"{folder} has no outputs/ folder: give a prediction folder")
    notebooks = sorted((folder / PROTOCOL_FOLDER).glob("*.ipynb"))
    interface = check_protocol(notebooks[0].read_bytes()) if len(notebooks) == 1 else None
    report = compare_folders(folder / "outputs", folder / RERUN_OUTPUTS, interface)
    print(report.table())
    counts = ", ".join(f"{n} {verdict}" for verdict, n in report.counts().items() if n) or "no outputs"
    print(("reproduced: " if report.reproduced else "NOT reproduced: ") + counts)
    return 0 if report.reproduced else 1


if __name__ == "__main__":
    raise SystemExit(main())
