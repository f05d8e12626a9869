"""Web-service functions; importing the modules registers them."""

from . import cohorts, courses, enrol, extra, groups, plugin, site, users  # noqa: F401
from .base import REGISTRY, SERVICE_ORDER

__all__ = ["REGISTRY", "SERVICE_ORDER"]
