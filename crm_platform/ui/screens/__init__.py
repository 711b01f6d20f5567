"""Generated screens: list, detail, forms, kanban — one implementation for every entity."""
