"""A prediction read back: the executed notebook, outputs with units, plots, log, timings, provenance."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outputs import OutputData, read_outputs

# A prediction folder keeps the exact inputs of its run, and a re-execution of its notebook writes
# beside the stored outputs, never over them (labkit/runner/portable.py, docs/reproducibility.md).
INPUTS = "inputs"
MODEL_FOLDER = f"{INPUTS}/model"
PROTOCOL_FOLDER = f"{INPUTS}/protocol"
RERUN_OUTPUTS = "rerun-outputs"


@dataclass(frozen=True)
class Prediction:
    run_id: str
    status: str
    folder: Path

    @property
    def notebook(self) -> Path:
        return self.folder / "notebook.ipynb"

    @property
    def outputs(self) -> dict[str, OutputData]:
        return read_outputs(self.folder / "outputs")

    def output(self, name: str) -> OutputData:
        outputs = self.outputs
        if name not in outputs:
            raise KeyError(f"run {self.run_id} has no output {name!r}; it has {sorted(outputs)}")
        return outputs[name]

    @property
    def plots(self) -> list[Path]:
        return sorted((self.folder / "plots").glob("*.png"))

    @property
    def log(self) -> str:
        path = self.folder / "log.txt"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def provenance(self) -> dict[str, Any]:
        return json.loads((self.folder / "provenance.json").read_text())

    @property
    def timings(self) -> dict[str, float]:
        path = self.folder / "timings.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _repr_html_(self) -> str:
        """How a prediction shows itself in a notebook: status, outputs with units, plots."""
        from .display import prediction_html
        return prediction_html(self)
