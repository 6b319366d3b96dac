"""Protocol notebooks: their declared interface, the protocol check, and model compatibility."""
from .check import ProtocolCheckError, check_protocol
from .compat import Compatibility, compatibility
from .interface import Interface, OutputSpec, PlotSpec

__all__ = ["Compatibility", "Interface", "OutputSpec", "PlotSpec", "ProtocolCheckError",
           "check_protocol", "compatibility"]
