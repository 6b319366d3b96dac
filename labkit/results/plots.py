"""The protocol's default plots, drawn from its outputs as PNG files."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..protocols.interface import Interface  # noqa: E402
from .outputs import OutputData  # noqa: E402


def plot_file_name(x: str, y: str) -> str:
    return f"{y}_vs_{x}.png"


def render_default_plots(interface: Interface, outputs: dict[str, OutputData], plots_dir: Path) -> list[Path]:
    """Draw each declared plot whose outputs exist; return the files written."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in interface.plots:
        x, y = outputs.get(spec.x), outputs.get(spec.y)
        if x is None or y is None:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        yv = y.values if y.values.ndim == 1 else y.values.T
        ax.plot(x.values.reshape(-1) if x.values.size > 1 else x.values, yv, marker="." if x.values.size < 50 else None)
        ax.set_xlabel(f"{spec.x} ({x.units})")
        ax.set_ylabel(f"{spec.y} ({y.units})")
        ax.set_title(spec.title or f"{spec.y} against {spec.x}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = plots_dir / plot_file_name(spec.x, spec.y)
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
