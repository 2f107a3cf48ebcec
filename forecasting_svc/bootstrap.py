"""Composition root: settings -> artifact store -> domain service -> transport.

Service-specific options (environment):

* NOVAMIND_FORECAST_MAX_BATCH (default 32): most requests in one model call.
* NOVAMIND_FORECAST_BATCH_WAIT_MS (default 5): how long a batch formed while
  others were in flight waits for more to join (an idle batcher runs at once).
* NOVAMIND_FORECAST_TORCH_THREADS (default 1): torch intra-op threads. Request
  batches are small; one thread leaves the other core to the event loop and
  avoids OpenMP spinning against it.

The per-patient statistical members (statsforecast) are warmed up here, so the
first request does not pay for importing and compiling them.
"""

from __future__ import annotations

import logging

from common.artifacts import ArtifactStore
from common.server import ServiceDefinition
from common.settings import Settings, SettingsError
from forecasting_svc.server import service_definition
from forecasting_svc.service import ForecastingService

_LOGGER = logging.getLogger(__name__)


def _extra_number(settings: Settings, name: str, default: float, low: float, high: float) -> float:
    raw = settings.extra.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: must be a number") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name}: must be between {low:g} and {high:g}")
    return value


def build(settings: Settings) -> ServiceDefinition:
    import torch

    threads = int(_extra_number(settings, "NOVAMIND_FORECAST_TORCH_THREADS", 1, 1, 64))
    max_batch = int(_extra_number(settings, "NOVAMIND_FORECAST_MAX_BATCH", 32, 1, 1024))
    wait_ms = _extra_number(settings, "NOVAMIND_FORECAST_BATCH_WAIT_MS", 5.0, 0.0, 1000.0)
    torch.set_num_threads(threads)
    store = ArtifactStore(settings.model_dir, settings.secret("artifact"))
    service = ForecastingService.from_store(
        store,
        max_history_points=settings.max_history_points,
        max_batch=max_batch,
        max_wait_seconds=wait_ms / 1000.0,
    )
    if service.models is not None:
        # statsforecast compiles its numba kernels on first use (seconds); pay that here,
        # before the server reports SERVING, not on the first patient's request.
        from forecasting_svc.models.local import warm_up

        warm_up()
    return service_definition(service)
