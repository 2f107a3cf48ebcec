"""The ``python -m <svc>`` entry point shared by every service.

With ``NOVAMIND_WORKERS`` > 1 this process supervises that many server
processes sharing the port (``common.workers``); each runs ``_serve`` below.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable

from common.logs import configure_logging
from common.server import ServiceDefinition, serve
from common.settings import Settings, SettingsError
from common.tracing import configure_tracing, shutdown_tracing
from common.workers import supervise

_LOGGER = logging.getLogger(__name__)

DefinitionFactory = Callable[[Settings], ServiceDefinition]


def run_service(service: str, build: DefinitionFactory) -> int:
    """Read settings, configure logging and tracing, serve until SIGTERM. Returns an exit code."""
    try:
        settings = Settings.from_env(service)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        return supervise(settings, functools.partial(_serve, build, reuse_port=True))
    return _serve(build, settings, 0)


def _serve(
    build: DefinitionFactory, settings: Settings, index: int, *, reuse_port: bool = False
) -> int:
    """Run one server process (the only one, or worker ``index`` of several)."""
    if reuse_port:  # a fresh spawned interpreter: nothing is configured yet
        configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings.service)

    async def build_and_serve() -> None:
        # Built inside the running loop: aio channels and servers bind to it.
        await serve(settings, build(settings), reuse_port=reuse_port)

    try:
        asyncio.run(build_and_serve())
    except SettingsError as exc:
        _LOGGER.error("configuration error: %s", exc)
        return 2
    finally:
        shutdown_tracing()
    return 0
