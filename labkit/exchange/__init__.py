"""Exchanging predictions with the world outside the lab: Binder folders (``binder.py``)."""
