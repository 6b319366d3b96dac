"""Protocol units (spec §1.3) and conversion of model quantities into them.

Protocols speak ms, mV, mM and µA/cm² whatever units a model author chose, so every
value crossing the ``labkit.sim`` API is converted here, and only here.
"""

from __future__ import annotations

import logging

import myokit

log = logging.getLogger(__name__)

#: Specific membrane capacitance the Web Lab protocols assume (µF/cm²): it turns A/F into µA/cm².
CHASTE_SPECIFIC_CAPACITANCE = 1.0

MS = myokit.parse_unit("ms")
MV = myokit.parse_unit("mV")
MM = myokit.parse_unit("mM")
UA_PER_CM2 = myokit.parse_unit("uA/cm^2")
_A_PER_F = myokit.parse_unit("A/F")
_A = myokit.parse_unit("A")
_UA = myokit.parse_unit("uA")
_UF = myokit.parse_unit("uF")

#: Quantity kinds a protocol has a unit for; anything else stays in model units.
PROTOCOL_UNITS: dict[str, myokit.Unit] = {
    "time": MS,
    "voltage": MV,
    "concentration": MM,
    "current": UA_PER_CM2,
}


def conversion_factor(from_unit: myokit.Unit | None, to_unit: myokit.Unit) -> float | None:
    """``x[from] * factor = x[to]``, or ``None`` when the units are not interconvertible."""
    if from_unit is None:
        return None
    try:
        return float(myokit.Unit.conversion_factor(from_unit, to_unit).value())
    except myokit.IncompatibleUnitError:
        return None


def quantity_kind(unit: myokit.Unit | None) -> str | None:
    """Which protocol quantity (time, voltage, concentration, current) a model unit measures."""
    if unit is None:
        return None
    for kind, target in (("time", MS), ("voltage", MV), ("concentration", MM)):
        if conversion_factor(unit, target) is not None:
            return kind
    for target in (_A_PER_F, UA_PER_CM2, _A):
        if conversion_factor(unit, target) is not None:
            return "current"
    return None


def to_protocol_factor(
    unit: myokit.Unit | None,
    *,
    capacitance_uF: float | None = None,
    kind: str | None = None,
) -> tuple[float, str]:
    """Factor taking a model value in ``unit`` to protocol units, and that unit's label.

    Currents follow §1.3: A/F-like units become µA/cm² through the protocol's 1 µF/cm²,
    current densities convert directly, and absolute currents are divided by the
    cell capacitance (``capacitance_uF``, required only in that case).
    Quantities of no protocol kind keep their model units (factor 1).
    """
    kind = kind or quantity_kind(unit)
    if kind in ("time", "voltage", "concentration"):
        target = PROTOCOL_UNITS[kind]
        if unit is None:  # unitless in the file: trust that the author meant protocol units
            return 1.0, str(target)
        factor = conversion_factor(unit, target)
        if factor is None:  # only when the caller forced a kind the unit does not have
            raise ValueError(f"cannot convert {unit} to {target}")
        return factor, str(target)
    if kind == "current":
        label = str(UA_PER_CM2)
        if unit is None:
            return 1.0, label
        f = conversion_factor(unit, _A_PER_F)
        if f is not None:
            return f * CHASTE_SPECIFIC_CAPACITANCE, label
        f = conversion_factor(unit, UA_PER_CM2)
        if f is not None:
            return f, label
        f = conversion_factor(unit, _UA)
        if f is not None:
            if capacitance_uF is None or capacitance_uF == 0:
                raise ValueError(
                    f"the model gives this current as an absolute current ({unit}); converting it "
                    "to µA/cm² needs the membrane_capacitance annotation, which the model lacks"
                )
            return f / capacitance_uF, label
        raise ValueError(f"{unit} is not a current unit")
    return 1.0, str(unit) if unit is not None else "dimensionless"


def capacitance_in_uF(value: float, unit: myokit.Unit | None) -> float | None:
    """A capacitance in µF (``None`` if ``unit`` is not a capacitance), for absolute currents."""
    f = conversion_factor(unit, _UF)
    return None if f is None else value * f
