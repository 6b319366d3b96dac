"""The demo lab: labkit's own classic models and standard protocols, and their experiment matrix."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..experiments import RunInfo
from ..lab import Lab

DEMO_MODELS = Path(__file__).with_name("models")
STANDARD_PROTOCOLS = Path(__file__).resolve().parents[2] / "notebooks" / "protocols"
DEMO_PROTOCOLS = ("steady_pacing.ipynb", "calcium_transient.ipynb")


def _add_if_changed(lab: Lab, kind: str, path: Path) -> None:
    """Add ``path`` unless the latest version already holds exactly these bytes (re-runs are cheap)."""
    if path.stem in lab.names(kind) and lab.read_file(kind, path.stem) == path.read_bytes():
        return
    (lab.add_model if kind == "model" else lab.add_protocol)(path, message="demo content")


def seed(lab: Lab) -> None:
    """Put the demo models and protocols into ``lab``."""
    for model in sorted(DEMO_MODELS.glob("*.cellml")):
        _add_if_changed(lab, "model", model)
    for name in DEMO_PROTOCOLS:
        path = STANDARD_PROTOCOLS / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run the demo from a labkit checkout")
        _add_if_changed(lab, "protocol", path)


def build_demo(directory: Path, *, workers: int = 2, keep_workers: bool = False,
               echo: Callable[[str], None] = print) -> list[RunInfo]:
    """Create (or refresh) the demo lab, run its whole experiment matrix and say where to look."""
    from ..cli import _wait_with_progress
    lab = Lab.open(directory)
    try:
        seed(lab)
        echo(f"demo lab in {lab.settings.root}: models {', '.join(lab.names('model'))}; "
             f"protocols {', '.join(lab.names('protocol'))}")
        lab.start_workers(workers)
        echo(f"{workers} workers started (logs in {lab.settings.logs})")
        runs = _wait_with_progress(lab, lab.run_matrix(only_compatible=False), timeout=None)
        echo("")
        for info in runs:
            summary = info.status
            if info.status == "inapplicable":
                summary += f" (model lacks {', '.join(info.missing_terms)})"
            elif info.results_path:
                outputs = lab.prediction(info.id).outputs
                scalars = [f"{o.name}={o.scalar:.4g} {o.units}" for o in outputs.values()
                           if o.values.size == 1 and o.units != "dimensionless"]
                summary += ": " + ", ".join(scalars[:3])
            echo(f"  {info.model:<22} x {info.protocol:<18} {summary}")
        echo("")
        echo("Where to look next:")
        echo(f"  predictions (executed notebooks, outputs, plots): {lab.settings.results / 'runs'}")
        echo(f"  one run in detail:   python -m labkit --lab {directory} show {runs[0].id if runs else 'RUN_ID'}")
        echo(f"  in JupyterLab:       import labkit; lab = labkit.Lab.open({str(directory)!r})")
        if keep_workers:
            echo(f"  workers keep running; stop them with: python -m labkit --lab {directory} workers stop")
        return runs
    finally:
        if not keep_workers:
            lab.stop_workers()
        lab.close()


if __name__ == "__main__":
    build_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-lab"))
