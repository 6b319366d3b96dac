"""Predictions: outputs with units, plots, the executed notebook and provenance, read back."""
from .outputs import OutputData, OutputWriter, read_outputs

__all__ = ["OutputData", "OutputWriter", "read_outputs"]
from .prediction import Prediction  # noqa: E402

__all__.append("Prediction")
