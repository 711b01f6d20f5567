"""crm_platform: a metadata-driven CRM platform (packs of configuration -> tables, screens, rules)."""

__version__ = "0.1.0"
