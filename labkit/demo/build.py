"""The demo lab: labkit's own classic models and standard protocols, and their experiment matrix."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..experiments import RunInfo
from ..lab import Lab

DEMO_MODELS = Path(__file__).with_name("models")
STANDARD_PROTOCOLS = Path(__file__).resolve().parents[2] / "notebooks" / "protocols"
# The demo lab holds the whole standard library; its first matrix runs the quick protocols, and the
# rest (restitution, block and K_o scans take many minutes per model) are a click away in the matrix.
DEMO_PROTOCOLS = tuple(sorted(p.name for p in STANDARD_PROTOCOLS.glob("*.ipynb"))) or (
    "steady_pacing.ipynb", "calcium_transient.ipynb")
FIRST_MATRIX = ("steady_pacing", "calcium_transient")

FEW = [-10.01, 0.01, 10.01]  # test potentials (mV) off the integers, as the Web Lab's protocols use
#: Short runs of each standard protocol: the same code path with less simulated time (fewer paces and
#: sweeps), for the protocol library's test and its nbval regression notebooks (tests/nbval).
QUICK_PARAMETERS: dict[str, dict] = {
    "steady_pacing": {"max_paces": 20},
    "calcium_transient": {"max_paces": 20},
    "steady_state_restitution": {"pacing_intervals": [1000, 600], "max_steady_state_beats": 10},
    "s1s2": {"steady_state_beats": 5, "s2_intervals": [1000, 500, 350]},
    "ical": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ical_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ina_iv_curves": {"steady_state_time": 1000.0, "peak_test_potentials": [-40.01, -20.01, 0.01],
                      "inactivation_test_potentials": [-120.01, -80.01, -60.01],
                      "activation_test_potentials": [-40.01, 0.01]},
    "ikr_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "iks_iv_curve": {"steady_state_time": 1000.0, "test_potentials": FEW},
    "ik1_iv_curve": {"steady_state_time": 1000.0, "test_potentials": [-100.01, -60.01, 0.01]},
    "ion_current_block": {"current": "INa", "block_levels": [0.5, 1.0], "max_paces": 10},
    "extracellular_potassium_variation": {"extra_potassium_test_concentrations": [4, 8], "max_paces": 10},
    "graph_state": {"duration": 500.0},
    "timecourse_voltage_clamp": {"steady_state_time": 1000.0},
}


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
               echo: Callable[[str], None] = print, serve: bool = False, port: int = 8866,
               host: str = "127.0.0.1", run_all: bool = False) -> list[RunInfo]:
    """Create (or refresh) the demo lab, run its first experiment matrix (every protocol with
    ``run_all``) and say where to look.

    With ``serve`` it then starts the dashboards (Voilà) on the lab, prints their URL and keeps them
    and the workers running until Ctrl-C, so a visitor can browse and launch more runs at once.
    """
    from ..cli import _wait_with_progress
    lab = Lab.open(directory)
    try:
        seed(lab)
        echo(f"demo lab in {lab.settings.root}: models {', '.join(lab.names('model'))}; "
             f"protocols {', '.join(lab.names('protocol'))}")
        warning = lab.sandbox_warning
        if warning:
            echo(f"warning: {warning}")
        lab.start_workers(workers)
        echo(f"{workers} workers started (logs in {lab.settings.logs})"
             + ("" if warning else "; every run in a sandbox"))
        runs = _wait_with_progress(lab, lab.run_matrix(protocols=None if run_all else FIRST_MATRIX,
                                                        only_compatible=False), timeout=None)
        echo("")
        for info in runs:
            summary = info.status
            if info.status == "inapplicable":
                summary += f" (model lacks {', '.join(info.missing_terms)})"
            elif info.status == "failed" and info.error:
                summary += f": {info.error_line[:300]}"
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
        if serve:
            echo(f"  dashboards later:    python -m labkit --lab {directory} serve --workers")
            _serve(lab, port, host, echo)
        elif keep_workers:
            echo(f"  workers keep running; stop them with: python -m labkit --lab {directory} workers stop")
        else:
            echo(f"  dashboards:          python -m labkit --lab {directory} serve --workers")
        return runs
    finally:
        if not keep_workers:
            lab.stop_workers()
        lab.close()


def _serve(lab: Lab, port: int, host: str, echo: Callable[[str], None]) -> None:
    """Serve the dashboards on the demo lab (with its workers still running) until interrupted."""
    from ..dashboards.serve import DashboardServer, free_port
    server = DashboardServer(lab.settings, port=_usable_port(port, host, free_port), host=host)
    try:
        server.start(timeout=120)
        echo("")
        echo(f"Dashboards (Voilà), workers running: {server.url}")
        echo("  press Ctrl-C to stop the dashboards and the workers")
        server.wait()
    except KeyboardInterrupt:
        echo("stopping the dashboards and the workers")
    finally:
        server.stop()


def _usable_port(port: int, host: str, free_port: Callable[[str], int]) -> int:
    """``port`` if nothing listens there, else any free port (a second demo must still start)."""
    import socket
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return port
        except OSError:
            return free_port(host)


if __name__ == "__main__":
    build_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-lab"))
