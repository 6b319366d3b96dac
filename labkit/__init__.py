"""labkit: a Jupyter-native Web Lab for computational models.

    import labkit
    lab = labkit.Lab.open("my-lab")
    lab.add_model("tt06.cellml")
    lab.add_protocol("steady_pacing.ipynb")
    run = lab.run("tt06", "steady_pacing")

The names below are imported on first use: a protocol notebook's kernel that needs only
``labkit.sim`` and ``labkit.results`` does not pay for the database, the queue and the plotting
libraries (several seconds of CPU in every run).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BrokerUnavailable, Forbidden, Incompatible, InvalidInput, LabkitError, NotFound, StaleVersion

if TYPE_CHECKING:
    from .config import Settings, load_settings
    from .experiments import RunInfo
    from .lab import Lab, SaveResult
    from .results import OutputData, Prediction
    from .remote import RemoteLab, connect
    from .results.reproduce import Reproduction

_LAZY = {"Settings": ".config", "load_settings": ".config", "RunInfo": ".experiments", "Lab": ".lab",
         "SaveResult": ".lab", "OutputData": ".results", "Prediction": ".results",
         "Reproduction": ".results.reproduce", "RemoteLab": ".remote", "connect": ".remote"}

__all__ = ["BrokerUnavailable", "Forbidden", "Incompatible", "InvalidInput", "Lab", "LabkitError", "NotFound", "OutputData",
           "Prediction", "RemoteLab", "Reproduction", "RunInfo", "SaveResult", "Settings", "StaleVersion", "connect", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
