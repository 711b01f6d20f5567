"""The contract of the platform: pack format, JSON Schemas, loader and the immutable Registry.

Nothing here touches a database, HTTP or the rules engine.
"""

from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.loader import load_registry, validate_packs
from crm_platform.metadata.model import Entity, Field, Registry

__all__ = ["Entity", "Field", "PackError", "Problem", "Registry", "load_registry", "validate_packs"]
