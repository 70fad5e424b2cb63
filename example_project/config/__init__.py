"""The example project's configuration package.

Importing the Celery app here makes ``@shared_task`` bind to it in every
process (web and worker), as Celery's Django guide recommends.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
