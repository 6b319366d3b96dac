"""labkit: a Jupyter-native Web Lab for computational models.

    import labkit
    lab = labkit.Lab.open("my-lab")
    lab.add_model("tt06.cellml")
    lab.add_protocol("steady_pacing.ipynb")
    run = lab.run("tt06", "steady_pacing")
"""
from .config import Settings, load_settings
from .errors import Forbidden, Incompatible, InvalidInput, LabkitError, NotFound, StaleVersion
from .experiments import RunInfo
from .lab import Lab, SaveResult
from .results import OutputData, Prediction

__all__ = ["Forbidden", "Incompatible", "InvalidInput", "Lab", "LabkitError", "NotFound", "OutputData", "Prediction",
           "RunInfo", "SaveResult", "Settings", "StaleVersion", "load_settings"]
__version__ = "0.1.0"
