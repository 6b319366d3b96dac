"""Predictions: outputs with units, plots, the executed notebook and provenance, read back."""
from .outputs import OutputData, OutputWriter, read_outputs
from .prediction import Prediction

__all__ = ["OutputData", "OutputWriter", "Prediction", "read_outputs"]
