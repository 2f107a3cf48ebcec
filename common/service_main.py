"""The ``python -m <svc>`` entry point shared by every service."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from common.logs import configure_logging
from common.server import ServiceDefinition, serve
from common.settings import Settings, SettingsError
from common.tracing import configure_tracing, shutdown_tracing

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
    configure_tracing(service)

    async def build_and_serve() -> None:
        # Built inside the running loop: aio channels and servers bind to it.
        await serve(settings, build(settings))

    try:
        asyncio.run(build_and_serve())
    except SettingsError as exc:
        _LOGGER.error("configuration error: %s", exc)
        return 2
    finally:
        shutdown_tracing()
    return 0
