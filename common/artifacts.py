"""Signed, versioned model artifacts.

Layout under the store root::

    <root>/<name>/LATEST                       the current version (atomically replaced)
    <root>/<name>/<version>/manifest.json      name, version, data hash, metrics, file hashes
    <root>/<name>/<version>/manifest.sig       hex HMAC-SHA256 of manifest.json's bytes
    <root>/<name>/<version>/<files...>

A version is ``YYYYMMDDTHHMMSSffffffZ-<6 hex>``: UTC commit time, so versions
sort in time order, plus a random suffix so two trainers never collide.

Loading verifies before it trusts: the manifest signature first (over the raw
bytes, before parsing), then that the manifest names this artifact and
version, then every file's sha256, and that no unlisted file sits beside them.
Only then is a :class:`LoadedArtifact` built, and each loader re-hashes the
bytes it deserializes (read once into memory, so the checked bytes are the
loaded bytes). Torch weights load with ``weights_only=True`` even when signed:
the signature proves who wrote the file, weights-only proves it cannot run code.
joblib (pickle) is used only for scikit-learn objects and only after the
signature verified — a signed pickle is as trusted as the signing key.

``LATEST`` is not signed: anyone who can write the store could point it at an
older, validly signed version. Pin ``version=`` where rollback matters.

torch, xgboost and joblib are imported lazily inside the methods that need
them, so servers that never touch a model do not pay for (or need) them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import math
import os
import pickle
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Protocol, TypeVar

_LOGGER = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
LATEST_FILE = "LATEST"
FORMAT_VERSION = 1
MIN_KEY_BYTES = 32
_RESERVED = frozenset({MANIFEST_FILE, SIGNATURE_FILE})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$")
_VERSION_RE = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_XGBOOST_SUFFIXES = (".json", ".ubj")
_CHUNK = 1 << 20


class ArtifactError(Exception):
    """An artifact is missing, unsigned, tampered with or unreadable."""


class _XGBoostSavable(Protocol):
    def save_model(self, fname: str, /) -> None: ...


class _XGBoostLoadable(Protocol):
    def load_model(self, fname: bytearray, /) -> None: ...


_ModelT = TypeVar("_ModelT", bound=_XGBoostLoadable)


@dataclass(frozen=True)
class ArtifactManifest:
    """What was trained, on what, how well, and the sha256 of every file."""

    name: str
    version: str
    created_at: str
    training_data_sha256: str
    metrics: dict[str, float]
    params: dict[str, object]
    files: dict[str, str]
    format_version: int = FORMAT_VERSION

    def to_json_bytes(self) -> bytes:
        """The canonical bytes that are written to manifest.json and signed."""
        return _canonical_json(dataclasses.asdict(self))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Streaming sha256 of a file (also for hashing training data)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _canonical_json(obj: object) -> bytes:
    text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
    return (text + "\n").encode("ascii")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            "name: must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check_relpath(relpath: str) -> PurePosixPath:
    """A relative path inside an artifact; rejects traversal, absolute and hidden paths."""
    if not isinstance(relpath, str) or not relpath or "\\" in relpath:
        raise ValueError("relpath: must be a non-empty relative POSIX path")
    path = PurePosixPath(relpath)
    if path.is_absolute() or str(path) != relpath:
        raise ValueError("relpath: must be a normalized relative path")
    if not all(_PART_RE.fullmatch(part) for part in path.parts):
        raise ValueError(
            "relpath: each component must be letters, digits, '.', '_' or '-' "
            "and must not start with '.' (no '..' traversal)"
        )
    if relpath in _RESERVED:
        raise ValueError(f"relpath: {relpath} is reserved for the manifest")
    return path


def _new_version(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _manifest_from_json(raw: object) -> ArtifactManifest:
    """Typed manifest from parsed JSON; ValueError names the malformed field."""
    if not isinstance(raw, dict):
        raise ValueError("manifest: must be a JSON object")
    expected = {f.name for f in dataclasses.fields(ArtifactManifest)}
    if set(raw) != expected:
        raise ValueError("manifest: unexpected or missing fields")
    if raw["format_version"] != FORMAT_VERSION:
        raise ValueError(f"manifest.format_version: must be {FORMAT_VERSION}")
    for key in ("name", "version", "created_at", "training_data_sha256"):
        if not isinstance(raw[key], str):
            raise ValueError(f"manifest.{key}: must be a string")
    metrics, params, files = raw["metrics"], raw["params"], raw["files"]
    if not isinstance(metrics, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    ):
        raise ValueError("manifest.metrics: must map names to numbers")
    if not isinstance(params, dict):
        raise ValueError("manifest.params: must be an object")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and _SHA256_RE.fullmatch(v) for v in files.values()
    ):
        raise ValueError("manifest.files: must map paths to sha256 hex digests")
    return ArtifactManifest(
        name=raw["name"],
        version=raw["version"],
        created_at=raw["created_at"],
        training_data_sha256=raw["training_data_sha256"],
        metrics={str(k): float(v) for k, v in metrics.items()},
        params={str(k): v for k, v in params.items()},
        files={str(k): str(v) for k, v in files.items()},
    )


class ArtifactWriter:
    """Collects an artifact's files in a staging directory; ``commit`` publishes them.

    Use as a context manager: leaving the block without ``commit`` (or with an
    exception) deletes the staging directory, so half-written models never appear.
    """

    def __init__(self, root: Path, name: str, signing_key: bytes) -> None:
        self._name = _check_name(name)
        self._artifact_dir = root / name
        self._key = signing_key
        self._artifact_dir.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self._artifact_dir))
        self._files: list[str] = []
        self._manifest: ArtifactManifest | None = None

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    @property
    def name(self) -> str:
        return self._name

    def abort(self) -> None:
        """Discard everything staged (no-op after commit)."""
        if self._manifest is None and self._staging.exists():
            shutil.rmtree(self._staging, ignore_errors=True)

    def _target(self, relpath: str) -> Path:
        if self._manifest is not None:
            raise ValueError("artifact already committed")
        if not self._staging.exists():
            raise ValueError("artifact writer was aborted")
        path = _check_relpath(relpath)
        if relpath in self._files:
            raise ValueError(f"relpath: {relpath} was already saved")
        self._files.append(relpath)
        return self._staging.joinpath(*path.parts)

    def save_bytes(self, relpath: str, data: bytes) -> None:
        _write_file(self._target(relpath), bytes(data))

    def save_json(self, relpath: str, obj: object) -> None:
        self.save_bytes(relpath, _canonical_json(obj))

    def save_torch_state_dict(self, relpath: str, state_dict: Mapping[str, object]) -> None:
        """Save tensors only; refuses, at training time, anything weights-only can't load."""
        import torch

        buffer = io.BytesIO()
        torch.save(dict(state_dict), buffer)
        data = buffer.getvalue()
        try:
            torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            raise ValueError(
                "state_dict: holds objects other than tensors and plain containers; "
                "save model.state_dict(), not the model"
            ) from exc
        self.save_bytes(relpath, data)

    def save_xgboost(self, relpath: str, booster: _XGBoostSavable) -> None:
        """XGBoost's own format (a Booster or an sklearn-API model); ``.json`` or ``.ubj``."""
        if not relpath.endswith(_XGBOOST_SUFFIXES):
            raise ValueError("relpath: an XGBoost model must end in .json or .ubj")
        target = self._target(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        booster.save_model(str(target))
        _fsync_path(target)

    def save_joblib(self, relpath: str, obj: object) -> None:
        import joblib

        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        self.save_bytes(relpath, buffer.getvalue())

    def commit(
        self,
        *,
        metrics: Mapping[str, float],
        training_data_sha256: str,
        params: Mapping[str, object] | None = None,
    ) -> ArtifactManifest:
        """Hash, sign and atomically publish the artifact; make it LATEST."""
        if self._manifest is not None:
            raise ValueError("artifact already committed")
        if not self._files:
            raise ValueError("artifact: has no files; save at least one before commit")
        if not isinstance(training_data_sha256, str) or not _SHA256_RE.fullmatch(
            training_data_sha256
        ):
            raise ValueError("training_data_sha256: must be 64 lowercase hex characters")
        clean_metrics: dict[str, float] = {}
        for key, value in metrics.items():
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"metrics.{key}: must be a finite number")
            clean_metrics[str(key)] = number
        try:
            # A JSON round trip makes the returned manifest equal the loaded one
            # (tuples become lists) and rejects what JSON cannot hold.
            clean_params = json.loads(json.dumps(dict(params or {}), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError("params: must be JSON-serializable with finite numbers") from exc

        now = dt.datetime.now(dt.UTC)
        manifest = ArtifactManifest(
            name=self._name,
            version=_new_version(now),
            created_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            training_data_sha256=training_data_sha256,
            metrics=clean_metrics,
            params=clean_params,
            files={
                rel: sha256_file(self._staging.joinpath(*PurePosixPath(rel).parts))
                for rel in sorted(self._files)
            },
        )
        manifest_bytes = manifest.to_json_bytes()
        signature = hmac.new(self._key, manifest_bytes, hashlib.sha256).hexdigest()
        _write_file(self._staging / MANIFEST_FILE, manifest_bytes)
        _write_file(self._staging / SIGNATURE_FILE, (signature + "\n").encode("ascii"))
        _fsync_path(self._staging, directory=True)

        final = self._artifact_dir / manifest.version
        os.rename(self._staging, final)  # atomic: readers see all files or none
        self._manifest = manifest
        _publish_latest(self._artifact_dir, manifest.version)
        _LOGGER.info("committed artifact %s version %s", self._name, manifest.version)
        return manifest


def _publish_latest(artifact_dir: Path, version: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".LATEST-", dir=artifact_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write((version + "\n").encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, artifact_dir / LATEST_FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(artifact_dir, directory=True)


_VERIFIED = object()


class LoadedArtifact:
    """A verified artifact. Built only by :meth:`ArtifactStore.load`."""

    def __init__(self, manifest: ArtifactManifest, directory: Path, *, _proof: object) -> None:
        if _proof is not _VERIFIED:
            raise TypeError("LoadedArtifact is created by ArtifactStore.load after verification")
        self.manifest = manifest
        self.directory = directory

    def __repr__(self) -> str:
        return f"LoadedArtifact({self.manifest.name!r}, {self.manifest.version!r})"

    def _label(self) -> str:
        return f"artifact {self.manifest.name} {self.manifest.version}"

    def read_bytes(self, relpath: str) -> bytes:
        """The file's bytes, re-hashed against the manifest as they are read."""
        path = _check_relpath(relpath)
        expected = self.manifest.files.get(relpath)
        if expected is None:
            raise ArtifactError(f"{self._label()}: no file {relpath} in the manifest")
        try:
            data = self.directory.joinpath(*path.parts).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{self._label()}: file {relpath} is unreadable") from exc
        if not hmac.compare_digest(sha256_bytes(data), expected):
            raise ArtifactError(
                f"{self._label()}: file {relpath} sha256 mismatch (tampered or corrupted)"
            )
        return data

    def load_json(self, relpath: str) -> object:
        result: object = json.loads(self.read_bytes(relpath))
        return result

    def load_torch_state_dict(self, relpath: str) -> dict[str, object]:
        import torch

        data = self.read_bytes(relpath)
        try:
            loaded: object = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            raise ArtifactError(
                f"{self._label()}: file {relpath} refused by the weights-only loader "
                "(it holds objects other than tensors)"
            ) from exc
        except (RuntimeError, EOFError, ValueError) as exc:
            raise ArtifactError(f"{self._label()}: file {relpath} is not a torch file") from exc
        if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
            raise ArtifactError(f"{self._label()}: file {relpath} is not a state_dict")
        return {str(k): v for k, v in loaded.items()}

    def load_xgboost(self, relpath: str, booster_factory: Callable[[], _ModelT]) -> _ModelT:
        """Load into a fresh model from ``booster_factory`` (e.g. ``xgboost.Booster``)."""
        if not relpath.endswith(_XGBOOST_SUFFIXES):
            raise ValueError("relpath: an XGBoost model must end in .json or .ubj")
        data = self.read_bytes(relpath)
        model = booster_factory()
        model.load_model(bytearray(data))
        return model

    def load_joblib(self, relpath: str) -> object:
        # Unpickling runs code; acceptable only because the manifest signature
        # verified and read_bytes re-checked this file's hash.
        import joblib

        data = self.read_bytes(relpath)
        result: object = joblib.load(io.BytesIO(data))
        return result


class ArtifactStore:
    """Versioned artifacts under ``root``, signed and verified with ``signing_key``."""

    def __init__(self, root: Path, signing_key: bytes) -> None:
        if len(signing_key) < MIN_KEY_BYTES:
            raise ValueError(f"signing_key: must be at least {MIN_KEY_BYTES} bytes")
        self._root = Path(root)
        self._key = bytes(signing_key)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"ArtifactStore(root={str(self._root)!r})"

    def writer(self, name: str) -> ArtifactWriter:
        return ArtifactWriter(self._root, name, self._key)

    def list_versions(self, name: str) -> list[str]:
        """Committed versions, oldest first."""
        artifact_dir = self._root / _check_name(name)
        if not artifact_dir.is_dir():
            return []
        return sorted(
            entry.name
            for entry in artifact_dir.iterdir()
            if entry.is_dir() and _VERSION_RE.fullmatch(entry.name)
        )

    def exists(self, name: str) -> bool:
        return bool(self.list_versions(name))

    def load(
        self, name: str, version: str | None = None, *, train_hint: str = ""
    ) -> LoadedArtifact:
        """Verify and open ``name`` at ``version`` (None: the LATEST one).

        ``train_hint`` is the command that produces the artifact, e.g.
        ``"python -m forecasting_svc.train"``; it is quoted in the error when
        nothing has been trained yet.
        """
        versions = self.list_versions(name)
        if not versions:
            hint = f" — train it with `{train_hint}`" if train_hint else ""
            raise ArtifactError(f"no artifact named {name} under {self._root}{hint}")
        if version is None:
            version = self._latest(name, versions)
        if version not in versions:
            raise ArtifactError(f"artifact {name}: no version {version} under {self._root}")
        directory = self._root / name / version
        manifest = self._verified_manifest(name, version, directory)
        self._verify_files(manifest, directory)
        return LoadedArtifact(manifest, directory, _proof=_VERIFIED)

    def _latest(self, name: str, versions: list[str]) -> str:
        latest_path = self._root / name / LATEST_FILE
        try:
            latest = latest_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            # A crash between publishing the directory and LATEST: newest wins.
            return versions[-1]
        except (OSError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"artifact {name}: LATEST is unreadable") from exc
        if not _VERSION_RE.fullmatch(latest):
            raise ArtifactError(f"artifact {name}: LATEST does not name a version")
        return latest

    def _verified_manifest(self, name: str, version: str, directory: Path) -> ArtifactManifest:
        label = f"artifact {name} {version}"
        try:
            manifest_bytes = (directory / MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"{label}: {MANIFEST_FILE} missing") from None
        try:
            signature = (directory / SIGNATURE_FILE).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise ArtifactError(f"{label}: unsigned ({SIGNATURE_FILE} missing)") from None
        except UnicodeDecodeError:
            signature = ""
        expected = hmac.new(self._key, manifest_bytes, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ArtifactError(
                f"{label}: manifest signature invalid (edited manifest or wrong signing key)"
            )
        try:
            manifest = _manifest_from_json(json.loads(manifest_bytes))
        except ValueError as exc:
            raise ArtifactError(f"{label}: {exc}") from exc
        if (manifest.name, manifest.version) != (name, version):
            raise ArtifactError(f"{label}: manifest is signed for a different artifact")
        return manifest

    def _verify_files(self, manifest: ArtifactManifest, directory: Path) -> None:
        label = f"artifact {manifest.name} {manifest.version}"
        for relpath, expected in manifest.files.items():
            try:
                path = directory.joinpath(*_check_relpath(relpath).parts)
            except ValueError as exc:
                raise ArtifactError(f"{label}: manifest lists an invalid path") from exc
            if path.is_symlink() or not path.is_file():
                raise ArtifactError(f"{label}: file {relpath} missing")
            if not hmac.compare_digest(sha256_file(path), expected):
                raise ArtifactError(
                    f"{label}: file {relpath} sha256 mismatch (tampered or corrupted)"
                )
        listed = set(manifest.files) | _RESERVED
        for path in sorted(directory.rglob("*")):
            relpath = path.relative_to(directory).as_posix()
            if path.is_dir() and not path.is_symlink():
                continue
            if relpath not in listed:
                raise ArtifactError(f"{label}: unlisted file {relpath} in the artifact directory")
