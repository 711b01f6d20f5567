"""The ASGI entry point for servers: `uvicorn crm_platform.ui.asgi:app` (settings from the environment)."""

from crm_platform.config import Settings
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app

app = create_app(Site.open(Settings.from_env()), background_jobs=True)
