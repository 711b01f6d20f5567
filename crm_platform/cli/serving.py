"""`crm-platform serve` and `crm-platform worker`: the web app and API under uvicorn, and the arq
worker running background jobs from Redis."""

from __future__ import annotations

import typer

from crm_platform.cli.common import fail, open_site, out, require_synced
from crm_platform.config import Settings


def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Server processes"),
    trusted_proxies: str = typer.Option(None, "--trusted-proxies", help="Addresses of reverse proxies whose X-Forwarded-For is believed "
                                        "(e.g. 127.0.0.1), so login throttling and logs see the real client"),
) -> None:
    """Serve the web app and API."""
    import uvicorn

    site = open_site()
    require_synced(site)
    site.dispose()
    out.print(f"serving on http://{host}:{port}")
    uvicorn.run("crm_platform.ui.asgi:app", host=host, port=port, workers=workers, log_level="info",
                proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or None)


def worker(
    burst: bool = typer.Option(False, "--burst", help="Stop once the queue is empty"),
    sweep_seconds: float = typer.Option(None, "--sweep-seconds", help="How often due timers and abandoned jobs are looked for (default CRM_JOB_SWEEP_SECONDS or 5)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every job"),
) -> None:
    """Run background jobs (email, timers, notifications) from Redis with arq; needs CRM_REDIS_URL."""
    import logging.config

    from arq.logs import default_log_config

    if not Settings.from_env().redis_url:
        fail("crm-platform worker needs CRM_REDIS_URL (e.g. redis://127.0.0.1:6379/0); "
             "without Redis, jobs run inside `crm-platform serve` and no worker is needed")
    site = open_site()
    require_synced(site)
    from crm_platform.engine.jobs.worker import run_worker

    config = default_log_config(verbose)
    config["loggers"]["crm_platform"] = {"handlers": ["arq.standard"], "level": "DEBUG" if verbose else "INFO"}
    logging.config.dictConfig(config)
    try:
        run_worker(site, sweep_seconds=sweep_seconds, burst=burst)
    finally:
        site.dispose()
