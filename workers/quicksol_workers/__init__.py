"""Celery workers of the quicksol event bus: ``celery -A quicksol_workers worker -Q <queue>``."""

from . import tasks  # noqa: F401  - registers the tasks on the app
from .celery_app import app

__all__ = ["app"]

celery = app
