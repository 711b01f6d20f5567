"""The web layer: Starlette app, REST API, authentication, generated screens and templates."""
