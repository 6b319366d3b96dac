"""Validation against the Web Lab's reference results, as a product feature (``labkit validate``)."""
from .compare import Comparison, compare
from .report import pass_rate, write_report
from .run import OutputResult, validate

__all__ = ["Comparison", "OutputResult", "compare", "pass_rate", "validate", "write_report"]
