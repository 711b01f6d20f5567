"""The REST JSON API under /api/v1/, generated from the Registry."""
