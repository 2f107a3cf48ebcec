from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.mesh import train_tiny_models


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model_dir, key_dir) with tiny models of all three ML services, trained once."""
    base = tmp_path_factory.mktemp("trained")
    model_dir, key_dir = base / "models", base / "keys"
    train_tiny_models(model_dir, key_dir)
    return model_dir, key_dir
