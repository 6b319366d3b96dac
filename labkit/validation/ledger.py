"""A ledger of validation predictions, so that a validation longer than one sitting can be finished
over several sittings (or machines) and judged as one.

The full validation needs 8 to 10 hours of two workers. A validation lab keeps its predictions, but
only on the machine that ran them. The ledger is a JSON file that keeps, for each (model, Web Lab
protocol), the outputs the comparison needs, under a key made of everything that determines them:
the model file, the protocol notebook, the parameters, labkit's simulation code and Myokit's version.
``labkit validate --ledger FILE`` judges a pair from the ledger when its key still matches, runs the
others, and adds what it ran. A run that failed in its notebook is kept as a failure (its error,
no outputs), so later sittings judge it rather than pay for it again (``--retry-failed`` runs it
anyway). Any change to those inputs gives a new key, so an entry never stands
for code that did not produce it. Verdicts are not stored: they are recomputed from the outputs, so
the comparison rules can change without re-running anything.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import InvalidInput

FORMAT = 1
_PACKAGE = Path(__file__).resolve().parents[1]
#: The parts of labkit that a protocol notebook's outputs depend on: the simulation library and the
#: output writer. The notebook itself is keyed by its own bytes.
SIMULATION_CODE = ("sim/*.py", "results/outputs.py")


@dataclass(frozen=True)
class StoredOutput:
    """One output of a prediction as the ledger keeps it (the attributes the comparison reads)."""

    values: np.ndarray
    units: str


def code_fingerprint(package: Path = _PACKAGE) -> str:
    """SHA-256 of labkit's simulation code (under ``package``) and Myokit's version: what makes the
    same notebook on the same model give the same numbers."""
    import myokit

    digest = hashlib.sha256(f"myokit {myokit.__version__}\n".encode())
    for pattern in SIMULATION_CODE:
        for path in sorted(package.glob(pattern)):
            digest.update(f"{path.relative_to(package).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def entry_key(model: bytes, notebook: bytes, parameters: Mapping[str, Any], code: str) -> str:
    """The key of one prediction: equal keys mean the same inputs to the same code."""
    parts = [code, hashlib.sha256(model).hexdigest(), hashlib.sha256(notebook).hexdigest(),
             json.dumps(parameters, sort_keys=True)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _to_json(values: np.ndarray) -> Any:
    """Nested lists, NaN as null (JSON has no NaN)."""
    if values.ndim == 0:
        return None if math.isnan(values) else float(values)
    return [_to_json(v) for v in values]


def _from_json(values: Any) -> np.ndarray:
    return np.array(values, dtype=float)  # None becomes NaN


@dataclass(frozen=True)
class LedgerEntry:
    model: str
    protocol: str          # the Web Lab protocol's name
    key: str
    status: str            # the run's status: success, partial, or failed (in a notebook cell)
    run: str               # the run's id in the lab that made it
    seconds: float | None  # how long the run took (started to finished)
    recorded: str          # when it entered the ledger (UTC, ISO 8601)
    outputs: dict[str, StoredOutput]
    error: str = ""        # a failed run's error line: why these inputs give no outputs

    @property
    def failed(self) -> bool:
        """A kept failure: no outputs, only ``error``; judged without running again."""
        return self.status == "failed"


E = TypeVar("E")


class KeyedFile(Generic[E]):
    """A JSON file of one entry per (model, Web Lab protocol), each made under a key (``entry_key``):
    read once, searched by pair and key, written back whole."""

    def __init__(self, path: Path, entries: dict[tuple[str, str], E] | None = None) -> None:
        self.path = path
        self.entries = entries or {}

    def find(self, model: str, protocol: str, key: str) -> E | None:
        """The entry for this pair if it was made from the same inputs and code; otherwise None."""
        entry = self.entries.get((model, protocol))
        return entry if entry is not None and entry.key == key else None  # type: ignore[attr-defined]


class Ledger(KeyedFile[LedgerEntry]):
    """The ledger file: the compared outputs of each pair's prediction."""

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """Read ``path``; a file that does not exist yet is an empty ledger."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            entries = {}
            for e in data["entries"]:
                outputs = {name: StoredOutput(_from_json(o["values"]), o["units"]) for name, o in e["outputs"].items()}
                entry = LedgerEntry(e["model"], e["protocol"], e["key"], e["status"], e["run"], e["seconds"],
                                    e["recorded"], outputs, e.get("error", ""))
                entries[(entry.model, entry.protocol)] = entry
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidInput(f"{path} is not a labkit validation ledger ({error}); give another --ledger "
                               "file, or delete this one to start a new ledger") from error
        return cls(path, entries)

    def record(self, model: str, protocol: str, key: str, *, status: str, run: str, seconds: float | None,
               outputs: Mapping[str, Any], error: str = "") -> None:
        """Keep (or replace) this pair's outputs; ``outputs`` maps names to objects with values and units.

        A run that failed in the notebook is kept too (no outputs, its ``error``): the same inputs to
        the same code fail the same way, so later sittings judge it instead of paying for it again."""
        stored = {name: StoredOutput(np.asarray(o.values, dtype=float), o.units) for name, o in outputs.items()}
        self.entries[(model, protocol)] = LedgerEntry(
            model, protocol, key, status, run, seconds,
            datetime.now(timezone.utc).isoformat(timespec="seconds"), stored, error)

    def save(self) -> None:
        """Write the whole ledger, sorted, so that its changes read well in a diff."""
        entries = [{"model": e.model, "protocol": e.protocol, "key": e.key, "status": e.status, "run": e.run,
                    "seconds": e.seconds, "recorded": e.recorded,
                    "outputs": {name: {"units": o.units, "values": _to_json(o.values)}
                                for name, o in sorted(e.outputs.items())},
                    **({"error": e.error} if e.error else {})}
                   for _, e in sorted(self.entries.items())]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        lines = ",\n".join(json.dumps(e, separators=(",", ":")) for e in entries)  # one entry per line
        temporary.write_text(f'{{"format": {FORMAT}, "entries": [\n{lines}\n]}}\n')
        temporary.replace(self.path)
