"""Executes one run: scratch copies of exact commits, papermill, limits, prediction collection."""
from .execute import execute_run

__all__ = ["execute_run"]
