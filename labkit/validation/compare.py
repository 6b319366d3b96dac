"""Comparing a prediction's output with a reference output, under documented tolerances.

| kind | outputs | an element passes when |
| --- | --- | --- |
| ``apd`` | APDs and DIs in ms | ``|ours - ref| <= max(0.01 |ref|, 2 ms)`` |
| ``scaled_apd`` | APD90 in % of control | the same rule in ms: ``max(0.01 |ref|, 100 * 2 ms / control APD90)`` |
| ``normalised`` | normalised curves | ``|ours - ref| <= 0.02`` |
| ``current`` | absolute currents | ``|ours - ref| <= 0.02 max|ref|`` (the normalised rule on the curve's scale) |
| ``voltage`` | resting potentials and voltages in mV | ``|ours - ref| <= 0.5 mV`` |
| ``scaled_voltage`` | resting potential in % of control | the same rule in mV: ``100 * 0.5 mV / |control|`` |
| ``count`` | numbers of paces | ``|ours - ref| <= 0.1 |ref|`` |
| ``slope`` | restitution slopes (dimensionless) | ``|ours - ref| <= 0.02 + 0.05 |ref|`` |

An output passes when every element passes and the shapes agree (a transposed array counts as the
same shape: the reference's 2-d files store arrays transposed).

Two rules follow how the Web Lab checked its own results (protocols-spec §1, the reproducibility
harness):

* NaN equals NaN at the same element (``numpy.testing.assert_allclose``'s default): a model that
  gives no value where the Web Lab got none is reproduced; NaN on one side only fails.
* The harness ran with ``max_paces = 1000``, so a reference count of exactly 1000 means "no steady
  state within 1000 paces". Our count is capped at 1000 before it is compared with such a reference,
  which is what running with that cap would give (the count is the first pace below the threshold).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("apd", "scaled_apd", "normalised", "current", "voltage", "scaled_voltage", "count", "slope")
HARNESS_MAX_PACES = 1000.0  # the Web Lab harness's override of max_paces (protocols-spec §1)


@dataclass(frozen=True)
class Comparison:
    passed: bool
    kind: str
    max_abs_error: float
    max_rel_error: float
    failing_elements: int
    elements: int
    note: str = ""


def tolerance(kind: str, reference: np.ndarray, control: float | None = None) -> np.ndarray:
    """The allowed absolute error for each reference element."""
    ref = np.abs(reference)
    if kind == "apd":
        return np.maximum(0.01 * ref, 2.0)
    if kind == "scaled_apd":
        floor = 100 * 2.0 / abs(control) if control else 0.0
        return np.maximum(0.01 * ref, floor)
    if kind == "normalised":
        return np.full(reference.shape, 0.02)
    if kind == "current":
        return np.full(reference.shape, 0.02 * float(ref.max()) if ref.size else 0.0)
    if kind == "voltage":
        return np.full(reference.shape, 0.5)
    if kind == "scaled_voltage":
        return np.full(reference.shape, 100 * 0.5 / abs(control) if control else 0.0)
    if kind == "count":
        return 0.1 * ref
    if kind == "slope":
        return 0.02 + 0.05 * ref
    raise ValueError(f"unknown comparison kind {kind!r}; known: {KINDS}")


def compare(ours: np.ndarray, reference: np.ndarray, kind: str, control: float | None = None) -> Comparison:
    """Compare element by element; a shape mismatch fails with a note saying so."""
    ours = np.asarray(ours, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if ours.shape != reference.shape:
        if ours.ndim == 2 and ours.T.shape == reference.shape:
            ours = ours.T
        elif ours.size == reference.size and ours.size == max(ours.shape + (1,)) and \
                reference.size == max(reference.shape + (1,)):
            ours = ours.reshape(reference.shape)  # a vector and a row/column of the same length
        else:
            return Comparison(False, kind, float("nan"), float("nan"), reference.size, reference.size,
                              f"shape {ours.shape} differs from the reference's {reference.shape}")
    note = ""
    if kind == "count" and (capped := (reference == HARNESS_MAX_PACES) & (ours > HARNESS_MAX_PACES)).any():
        ours = np.where(capped, HARNESS_MAX_PACES, ours)
        note = "our count capped at the harness's 1000 paces"
    both_nan = np.isnan(ours) & np.isnan(reference)
    error = np.where(both_nan, 0.0, np.abs(ours - reference))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(reference != 0, error / np.abs(reference), np.where(error == 0, 0.0, np.inf))
    bad = ~(error <= tolerance(kind, reference, control)) & ~both_nan  # NaN on one side only fails
    if np.isnan(ours).any():
        note = "; ".join(filter(None, [note, "NaN where the reference has NaN too" if not bad.any()
                                       else "our values contain NaN"]))
    with np.errstate(invalid="ignore"):
        max_abs = float(np.nanmax(error)) if error.size and not np.isnan(error).all() else float("nan")
        max_rel = float(np.nanmax(relative)) if relative.size and not np.isnan(relative).all() else float("nan")
    return Comparison(not bool(bad.any()), kind, max_abs, max_rel, int(bad.sum()), int(reference.size), note)
