"""Artifact store: real torch, xgboost and scikit-learn models round-trip; tampering is refused."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xgboost as xgb
from sklearn.preprocessing import StandardScaler

from common.artifacts import (
    ArtifactError,
    ArtifactManifest,
    ArtifactStore,
    LoadedArtifact,
)

KEY = b"s" * 32
DATA_SHA = hashlib.sha256(b"training rows").hexdigest()
NAME = "forecasting.xgboost"


class _CodeOnLoad:
    """Unpickling this touches a file: a stand-in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "models", KEY)


def _tiny_linear() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(4, 2)


def _tiny_booster() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = 2.0 * x[:, 0] - x[:, 1] + rng.normal(scale=0.1, size=50)
    booster = xgb.train(
        {"max_depth": 2, "eta": 0.3, "nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=5
    )
    return booster, x


def _commit_simple(store: ArtifactStore, payload: bytes = b"weights") -> ArtifactManifest:
    with store.writer(NAME) as writer:
        writer.save_bytes("weights.bin", payload)
        return writer.commit(metrics={"mae": 1.5}, training_data_sha256=DATA_SHA)


def _version_dir(store: ArtifactStore, manifest: ArtifactManifest) -> Path:
    return store.root / manifest.name / manifest.version


def test_round_trip_of_torch_xgboost_joblib_and_json(store: ArtifactStore) -> None:
    linear = _tiny_linear()
    booster, x = _tiny_booster()
    scaler = StandardScaler().fit(x)
    with store.writer(NAME) as writer:
        writer.save_torch_state_dict("transformer/weights.pt", linear.state_dict())
        writer.save_xgboost("booster.ubj", booster)
        writer.save_xgboost("booster.json", booster)
        writer.save_joblib("scaler.joblib", scaler)
        writer.save_json("features.json", {"lags": [1, 7], "rolling": 14})
        manifest = writer.commit(
            metrics={"mae": 1.25, "coverage": 0.9},
            training_data_sha256=DATA_SHA,
            params={"max_depth": 2, "quantiles": (0.1, 0.5, 0.9)},
        )

    loaded = store.load(NAME)
    assert loaded.manifest == manifest
    assert loaded.manifest.params["quantiles"] == [0.1, 0.5, 0.9]
    assert loaded.manifest.metrics == {"mae": 1.25, "coverage": 0.9}
    assert loaded.manifest.training_data_sha256 == DATA_SHA

    state = loaded.load_torch_state_dict("transformer/weights.pt")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    assert tensors.keys() == state.keys() == {"weight", "bias"}
    restored = torch.nn.Linear(4, 2)
    restored.load_state_dict(tensors)
    probe = torch.ones(3, 4)
    assert torch.equal(restored(probe), linear(probe))

    expected = booster.predict(xgb.DMatrix(x))
    for relpath in ("booster.ubj", "booster.json"):
        again = loaded.load_xgboost(relpath, xgb.Booster)
        np.testing.assert_allclose(again.predict(xgb.DMatrix(x)), expected, rtol=1e-6)

    scaler_again = loaded.load_joblib("scaler.joblib")
    assert isinstance(scaler_again, StandardScaler)
    np.testing.assert_allclose(scaler_again.transform(x), scaler.transform(x))

    assert loaded.load_json("features.json") == {"lags": [1, 7], "rolling": 14}


def test_manifest_records_the_sha256_of_every_file(store: ArtifactStore) -> None:
    manifest = _commit_simple(store, b"\x00\x01payload")
    assert manifest.files == {"weights.bin": hashlib.sha256(b"\x00\x01payload").hexdigest()}
    on_disk = json.loads((_version_dir(store, manifest) / "manifest.json").read_bytes())
    assert on_disk["files"] == manifest.files
    assert on_disk["format_version"] == 1


def test_signature_is_hmac_of_the_manifest_bytes(store: ArtifactStore) -> None:
    import hmac

    directory = _version_dir(store, _commit_simple(store))
    expected = hmac.new(KEY, (directory / "manifest.json").read_bytes(), hashlib.sha256)
    assert (directory / "manifest.sig").read_text().strip() == expected.hexdigest()


def test_one_flipped_byte_in_the_weights_is_refused_naming_the_file(
    store: ArtifactStore,
) -> None:
    with store.writer(NAME) as writer:
        writer.save_torch_state_dict("weights.pt", _tiny_linear().state_dict())
        manifest = writer.commit(metrics={"mae": 1.0}, training_data_sha256=DATA_SHA)
    weights = _version_dir(store, manifest) / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as excinfo:
        store.load(NAME)
    message = str(excinfo.value)
    assert f"artifact {NAME} {manifest.version}" in message
    assert "file weights.pt sha256 mismatch (tampered or corrupted)" in message


def test_file_changed_after_load_is_refused_at_read_time(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    loaded = store.load(NAME)
    (_version_dir(store, manifest) / "weights.bin").write_bytes(b"swapped after verification")
    with pytest.raises(ArtifactError, match=r"weights\.bin sha256 mismatch"):
        loaded.read_bytes("weights.bin")


def test_edited_manifest_fails_the_signature(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    path = _version_dir(store, manifest) / "manifest.json"
    raw = json.loads(path.read_bytes())
    raw["metrics"]["mae"] = 0.01  # a better-looking model
    path.write_text(json.dumps(raw, sort_keys=True, indent=2) + "\n")
    with pytest.raises(ArtifactError, match="manifest signature invalid"):
        store.load(NAME)


def test_tampered_file_with_updated_manifest_hash_fails_the_signature(
    store: ArtifactStore,
) -> None:
    manifest = _commit_simple(store)
    directory = _version_dir(store, manifest)
    (directory / "weights.bin").write_bytes(b"evil")
    raw = json.loads((directory / "manifest.json").read_bytes())
    raw["files"]["weights.bin"] = hashlib.sha256(b"evil").hexdigest()
    (directory / "manifest.json").write_text(json.dumps(raw, sort_keys=True, indent=2) + "\n")
    with pytest.raises(ArtifactError, match="signature invalid"):
        store.load(NAME)


def test_missing_signature_is_refused_as_unsigned(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    (_version_dir(store, manifest) / "manifest.sig").unlink()
    with pytest.raises(ArtifactError, match=r"unsigned"):
        store.load(NAME)


def test_wrong_key_fails_the_signature(store: ArtifactStore) -> None:
    _commit_simple(store)
    with pytest.raises(ArtifactError, match="manifest signature invalid"):
        ArtifactStore(store.root, b"w" * 32).load(NAME)


def test_unlisted_file_is_refused(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    (_version_dir(store, manifest) / "extra.pkl").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"unlisted file extra\.pkl"):
        store.load(NAME)


def test_deleted_file_is_refused(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    (_version_dir(store, manifest) / "weights.bin").unlink()
    with pytest.raises(ArtifactError, match=r"file weights\.bin missing"):
        store.load(NAME)


def test_signed_manifest_moved_to_another_name_is_refused(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    other = store.root / "biometric.lstm" / manifest.version
    other.parent.mkdir(parents=True)
    _version_dir(store, manifest).rename(other)
    with pytest.raises(ArtifactError, match="signed for a different artifact"):
        store.load("biometric.lstm")


def test_latest_points_to_the_newest_version(store: ArtifactStore) -> None:
    first = _commit_simple(store, b"one")
    second = _commit_simple(store, b"two")
    assert first.version < second.version
    assert store.list_versions(NAME) == [first.version, second.version]
    assert (store.root / NAME / "LATEST").read_text().strip() == second.version
    assert store.load(NAME).read_bytes("weights.bin") == b"two"
    assert store.load(NAME, first.version).read_bytes("weights.bin") == b"one"


def test_version_is_a_sortable_utc_timestamp(store: ArtifactStore) -> None:
    manifest = _commit_simple(store)
    assert len(manifest.version) == len("20260131T120000000000Z-abcdef")
    assert manifest.version[8] == "T"
    assert manifest.version[21:23] == "Z-"
    assert manifest.version[:8] == manifest.created_at[:10].replace("-", "")


def test_missing_artifact_names_the_train_command(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactError) as excinfo:
        store.load("forecasting.transformer", train_hint="python -m forecasting_svc.train")
    assert str(excinfo.value) == (
        f"no artifact named forecasting.transformer under {store.root}"
        " — train it with `python -m forecasting_svc.train`"
    )
    assert not store.exists("forecasting.transformer")


def test_unknown_version_is_refused(store: ArtifactStore) -> None:
    _commit_simple(store)
    with pytest.raises(ArtifactError, match="no version"):
        store.load(NAME, "20000101T000000000000Z-000000")


@pytest.mark.parametrize(
    "relpath",
    ["../escape.bin", "a/../../escape.bin", "/etc/passwd", "..", ".hidden", "a//b", "a\\b", ""],
)
def test_path_traversal_in_relpath_is_rejected(store: ArtifactStore, relpath: str) -> None:
    with store.writer(NAME) as writer, pytest.raises(ValueError, match="relpath"):
        writer.save_bytes(relpath, b"x")
    assert not (store.root / "escape.bin").exists()
    assert not (store.root.parent / "escape.bin").exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "", "x" * 200])
def test_path_traversal_in_name_is_rejected(store: ArtifactStore, name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        store.writer(name)
    with pytest.raises(ValueError, match="name"):
        store.load(name)


def test_reserved_names_cannot_be_overwritten(store: ArtifactStore) -> None:
    with store.writer(NAME) as writer, pytest.raises(ValueError, match="reserved"):
        writer.save_bytes("manifest.json", b"{}")


def test_uncommitted_writer_leaves_nothing_behind(store: ArtifactStore) -> None:
    with pytest.raises(RuntimeError), store.writer(NAME) as writer:
        writer.save_bytes("weights.bin", b"half")
        raise RuntimeError("training crashed")
    assert store.list_versions(NAME) == []
    assert list((store.root / NAME).iterdir()) == []


def test_pickle_in_a_signed_torch_file_is_refused_by_weights_only(
    store: ArtifactStore, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "payload": _CodeOnLoad(marker)}, buffer)
    with store.writer(NAME) as writer:
        writer.save_bytes("weights.pt", buffer.getvalue())  # bypasses the save-time check
        writer.commit(metrics={}, training_data_sha256=DATA_SHA)

    loaded = store.load(NAME)  # the signature and hashes verify ...
    with pytest.raises(ArtifactError, match="refused by the weights-only loader"):
        loaded.load_torch_state_dict("weights.pt")  # ... and still nothing runs
    assert not marker.exists()

    # The payload is live: a loader without weights_only would have run it.
    torch.load(io.BytesIO(loaded.read_bytes("weights.pt")), weights_only=False)
    assert marker.exists()


def test_saving_a_whole_module_instead_of_a_state_dict_is_refused(store: ArtifactStore) -> None:
    with store.writer(NAME) as writer, pytest.raises(ValueError, match="state_dict"):
        writer.save_torch_state_dict("weights.pt", {"model": _tiny_linear()})


def test_commit_validates_its_inputs(store: ArtifactStore) -> None:
    with store.writer(NAME) as writer:
        with pytest.raises(ValueError, match="no files"):
            writer.commit(metrics={}, training_data_sha256=DATA_SHA)
        writer.save_bytes("w.bin", b"x")
        with pytest.raises(ValueError, match="training_data_sha256"):
            writer.commit(metrics={}, training_data_sha256="abc")
        with pytest.raises(ValueError, match=r"metrics\.mae"):
            writer.commit(metrics={"mae": float("nan")}, training_data_sha256=DATA_SHA)
        with pytest.raises(ValueError, match="params"):
            writer.commit(metrics={}, training_data_sha256=DATA_SHA, params={"f": object()})
        with pytest.raises(ValueError, match="relpath"):
            writer.save_xgboost("booster.bin", _tiny_booster()[0])
        writer.commit(metrics={}, training_data_sha256=DATA_SHA)
        with pytest.raises(ValueError, match="already committed"):
            writer.save_bytes("late.bin", b"x")


def test_loaded_artifact_cannot_be_built_without_verification(tmp_path: Path) -> None:
    manifest = ArtifactManifest(
        name=NAME,
        version="v",
        created_at="now",
        training_data_sha256=DATA_SHA,
        metrics={},
        params={},
        files={},
    )
    with pytest.raises(TypeError):
        LoadedArtifact(manifest, tmp_path, _proof=object())


def test_reading_a_file_not_in_the_manifest_is_refused(store: ArtifactStore) -> None:
    _commit_simple(store)
    with pytest.raises(ArtifactError, match=r"no file other\.bin"):
        store.load(NAME).read_bytes("other.bin")


def test_short_signing_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        ArtifactStore(tmp_path, b"short")


def test_common_artifacts_does_not_import_ml_libraries() -> None:
    import subprocess

    code = (
        "import sys, common.artifacts; "
        "print(sorted(m for m in ('torch', 'xgboost', 'joblib', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
