"""The core issue's end-to-end check: the demo command builds a lab, runs its matrix through the real
queue, and its ten Tusscher 2006 prediction reproduces the Web Lab."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit.demo.build import STANDARD_PROTOCOLS

pytestmark = pytest.mark.timeout(600)

TT06_APD90_REFERENCE = 301.4  # ms, the Web Lab's SteadyStateRestitution value at 1000 ms


def _worker_logs(folder: Path) -> str:
    """The tail of every worker log, so that a failed run in CI explains itself."""
    return "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in sorted(folder.glob("*.log")))


def test_the_demo_command_builds_a_lab_and_runs_its_matrix(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "labkit", "demo", str(tmp_path / "demo"), "--no-serve"],
                            capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    # steady pacing on all four models; the calcium transient only where calcium is modelled
    assert out.count(" success") == 6, out + _worker_logs(tmp_path / "demo" / "logs")
    assert out.count("inapplicable (model lacks cytosolic_calcium_concentration)") == 2, out
    assert "Where to look next" in out
    with labkit.Lab.open(tmp_path / "demo") as lab:
        assert lab.names("model") == ["beeler_reuter_1977", "hodgkin_huxley_1952", "noble_1962",
                                      "ten_tusscher_2006_epi"]
        shipped = sorted(p.stem for p in STANDARD_PROTOCOLS.glob("*.ipynb"))
        assert lab.names("protocol") == shipped  # the whole standard library, ready to run
        assert {r.protocol for r in lab.runs()} == {"steady_pacing", "calcium_transient"}
        assert not lab.workers.running(), "the demo stops its workers unless asked to keep them"
        apd = [lab.prediction(r.id).output("APD90").scalar for r in lab.runs(model="beeler_reuter_1977",
                                                                            protocol="steady_pacing")]
        assert len(apd) == 1 and 200 < apd[0] < 400  # Beeler-Reuter 1977: a ventricular AP

        # ten Tusscher 2006 (epicardial) through the real queue reproduces the Web Lab within 1 %
        [tt06] = lab.runs(model="ten_tusscher_2006_epi", protocol="steady_pacing")
        prediction = lab.prediction(tt06.id)
        apd90 = prediction.output("APD90")
        assert apd90.units == "ms"
        assert abs(apd90.scalar - TT06_APD90_REFERENCE) <= 0.01 * TT06_APD90_REFERENCE, apd90.scalar
        assert prediction.output("num_paces").scalar == 1000
        voltage = prediction.output("membrane_voltage")
        assert voltage.units == "mV" and voltage.shape == (1001,)
        assert [p.name for p in prediction.plots] == ["membrane_voltage_vs_time.png"]
