"""The app that ``celery -A labkit.queue.worker_app`` (and ``labkit worker``) loads: settings come
from ``LABKIT_LAB`` / ``LABKIT_*`` environment variables."""
from ..config import load_settings
from .app import make_celery

settings = load_settings()
app = make_celery(settings)
