"""The task queue: the Celery app, its tasks, and the embedded worker processes."""
from .app import make_celery
from .embedded import EmbeddedWorkers

__all__ = ["EmbeddedWorkers", "make_celery"]
