"""The app that ``celery -A labkit.queue.worker_app`` (and ``labkit worker``) loads: settings come
from ``LABKIT_LAB`` / ``LABKIT_*`` environment variables."""
import logging

from ..config import load_settings
from ..runner.sandbox import startup_warning
from .app import make_celery

settings = load_settings()
app = make_celery(settings)
if (_warning := startup_warning(settings)) is not None:  # said once, in the worker's own log
    logging.getLogger("labkit.sandbox").warning(_warning)
    print(f"labkit: WARNING: {_warning}", flush=True)
