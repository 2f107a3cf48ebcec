"""The statsforecast members are warmed up when the service is built, not on a first call."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from unittest import mock

from common.settings import Settings
from forecasting_svc.bootstrap import build
from tests.unit.forecasting.tiny_models import ARTIFACT_KEY_HEX, tiny_model_dir


def _settings(model_dir: Path, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env("forecasting", env={}),
        model_dir=model_dir,
        key_dir=tmp_path / "keys",
        audit_log=tmp_path / "audit.jsonl",
    )


def test_build_warms_up_the_local_members_once_models_are_loaded(tmp_path) -> None:
    calls: list[int] = []
    with (
        mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}),
        mock.patch("forecasting_svc.models.local.warm_up", lambda: calls.append(1)),
    ):
        build(_settings(tiny_model_dir(), tmp_path))
        assert calls == [1]
        # Without models there is nothing to forecast with, so nothing to warm up.
        build(_settings(tmp_path / "empty", tmp_path))
        assert calls == [1]


def test_warm_up_runs_a_real_fit() -> None:
    from forecasting_svc.models.local import warm_up

    warm_up()  # raises if statsforecast cannot fit a daily and a visit series
