"""Running a service: settings → app → uvicorn, shared by every ``python -m services.<name>``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

from services.common.runtime import configure_logging, limit_threads
from services.common.settings import ServiceSettings


def serve(name: str, settings: ServiceSettings, create_app: Callable[..., Any]) -> None:
    """Run ``create_app(settings)`` under uvicorn on the settings' host and port, one process, one worker."""
    import sys

    import uvicorn

    from services.common.errors import ConfigurationError

    configure_logging(settings.log_level, name, settings.log_format)
    limit_threads(settings.threads)
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's own records go through the JSON handler configured above
        access_log=False,  # our middleware logs each request once, with its id
        timeout_graceful_shutdown=10,
    )


def info_body(
    name: str, settings: ServiceSettings, facts: Mapping[str, object], secret_fields: tuple[str, ...] = ()
) -> dict[str, object]:
    """The body of a service's ``GET /info``: its name and version, then ``facts`` about what it serves, then its
    settings with ``secret_fields`` redacted."""
    from services.common.version import __version__

    return {"service": name, "version": __version__, **facts, "settings": redact(settings, secret_fields)}


def redact(settings: ServiceSettings, secret_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings as a dict for ``/info``, with secret fields replaced by ``"***"`` (or None when unset)."""
    values = settings.model_dump(mode="json")
    for field in secret_fields:
        if field in values:
            values[field] = "***" if values[field] else None
    return values


async def watch_file(reload_if_changed: Callable[[], bool], interval_s: float, what: str) -> None:
    """Poll ``reload_if_changed`` (run off the event loop) every ``interval_s`` until cancelled.

    Replicas use this to pick up a newer snapshot written by another process without a restart. A failing
    reload (e.g. a foreign, corrupt file) is logged and the loaded state is kept.
    """
    import asyncio
    import logging

    import anyio

    log = logging.getLogger(__name__)
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await anyio.to_thread.run_sync(reload_if_changed):
                log.info("reloaded a newer %s snapshot", what)
        except Exception:
            log.exception("%s snapshot reload failed; keeping the loaded state", what)


@contextlib.asynccontextmanager
async def background(coroutine: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """Run ``coroutine`` as a task for the lifetime of the block, cancelled on exit (None: nothing to run)."""
    import asyncio

    task = asyncio.create_task(coroutine) if coroutine is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
