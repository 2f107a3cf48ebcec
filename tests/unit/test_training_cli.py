"""--if-missing keeps a model this code can load and replaces one it cannot."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from common.artifacts import ArtifactStore
from common.training import usable_model_exists


def _store_with(tmp_path: Path, payload: dict[str, object]) -> ArtifactStore:
    store = ArtifactStore(tmp_path, secrets.token_bytes(32))
    with store.writer("demo.model") as writer:
        writer.save_json("model.json", payload)
        writer.commit(metrics={}, training_data_sha256="0" * 64, params={})
    return store


def _load(store: ArtifactStore) -> int:
    raw = store.load("demo.model").load_json("model.json")
    if not isinstance(raw, dict) or raw.get("format") != 2:
        raise ValueError("model.json: format 1 is no longer read (retrain)")
    return 2


def test_missing_model_is_missing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, secrets.token_bytes(32))
    assert usable_model_exists(store, "demo.model", _load) is False


def test_a_loadable_model_is_kept(tmp_path: Path) -> None:
    assert usable_model_exists(_store_with(tmp_path, {"format": 2}), "demo.model", _load)


def test_an_old_format_counts_as_missing_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store_with(tmp_path, {"format": 1})
    assert usable_model_exists(store, "demo.model", _load) is False
    assert "cannot be loaded (model.json: format 1 is no longer read" in capsys.readouterr().out


def test_a_model_signed_with_another_key_counts_as_missing(tmp_path: Path) -> None:
    _store_with(tmp_path, {"format": 2})
    other_key = ArtifactStore(tmp_path, secrets.token_bytes(32))
    assert usable_model_exists(other_key, "demo.model", _load) is False
