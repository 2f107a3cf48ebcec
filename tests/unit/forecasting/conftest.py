"""Fixtures of the forecasting unit tests: the shared tiny model set and a service on it."""

from __future__ import annotations

import pytest

from common.artifacts import ArtifactStore
from forecasting_svc.models.bundle import ForecastModels
from forecasting_svc.service import ForecastingService
from tests.unit.forecasting.tiny_models import tiny_store


@pytest.fixture(scope="session")
def store() -> ArtifactStore:
    return tiny_store()


@pytest.fixture(scope="session")
def models(store: ArtifactStore) -> ForecastModels:
    return ForecastModels.load(store)


@pytest.fixture
def service(models: ForecastModels) -> ForecastingService:
    return ForecastingService(models, max_history_points=2_000)
