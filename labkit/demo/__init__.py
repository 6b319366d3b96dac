"""The demo lab: classic models written for labkit, the standard protocols, one command to run."""
from .build import build_demo, seed

__all__ = ["build_demo", "seed"]
