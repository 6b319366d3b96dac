"""The errors labkit raises to users. Each message says what happened and what to do next."""


class LabkitError(Exception):
    """Base class of every error labkit reports to a user."""


class InvalidInput(LabkitError, ValueError):
    """A file, name or value was refused; nothing was stored."""


class NotFound(LabkitError, LookupError):
    """No entity, version, run or output by that name."""


class StaleVersion(LabkitError):
    """A save based on a version that is no longer the latest."""


class Incompatible(LabkitError):
    """A protocol needs ontology terms that a model does not annotate."""


class Forbidden(LabkitError, PermissionError):
    """The user may see this entity or run but may not do what was asked (edit, share, moderate)."""


class BrokerUnavailable(LabkitError, ConnectionError):
    """The message broker could not take a run's message (down, unreachable, unwritable); the run was
    not recorded."""
