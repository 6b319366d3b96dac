"""Validation against the Web Lab's reference results, as a product feature (``labkit validate``)."""
from .compare import Comparison, compare
from .ledger import Ledger
from .report import pass_rate, write_report
from .run import OutputResult, validate

__all__ = ["Comparison", "Ledger", "OutputResult", "compare", "pass_rate", "validate", "write_report"]
