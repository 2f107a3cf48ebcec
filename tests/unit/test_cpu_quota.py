"""The default NOVAMIND_WORKERS follows the container's CPU quota (cgroup v2 and v1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import cpu_quota
from common.cpu_quota import cgroup_cpu_limit, default_workers
from common.settings import Settings, SettingsError


@pytest.fixture
def many_cpus(monkeypatch):
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: 8)


def _v2(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(text)
    return root


def _v1(root: Path, quota: int, period: int, directory: str = "cpu") -> Path:
    (root / directory).mkdir(parents=True, exist_ok=True)
    (root / directory / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (root / directory / "cpu.cfs_period_us").write_text(f"{period}\n")
    return root


@pytest.mark.parametrize(
    ("text", "limit", "workers"),
    [
        ("100000 100000\n", 1.0, 1),  # a pod with 1 CPU gets 1
        ("150000 100000\n", 1.5, 1),  # rounded down: a second worker would be throttled
        ("200000 100000\n", 2.0, 2),
        ("50000 100000\n", 0.5, 1),  # at least one
        ("max 100000\n", None, 8),  # no quota: every CPU the process may use
    ],
)
def test_cgroup_v2_cpu_max(tmp_path, many_cpus, text, limit, workers):
    root = _v2(tmp_path / "cg", text)
    assert cgroup_cpu_limit(root) == limit
    assert default_workers(root) == workers


@pytest.mark.parametrize(
    ("quota", "directory", "workers"),
    [(100_000, "cpu", 1), (300_000, "cpu,cpuacct", 3), (-1, "cpu", 8)],
)
def test_cgroup_v1_cfs_quota(tmp_path, many_cpus, quota, directory, workers):
    root = _v1(tmp_path / "cg", quota, 100_000, directory)
    assert default_workers(root) == workers


def test_quota_never_exceeds_the_cpus_the_process_may_use(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: 2)
    assert default_workers(_v2(tmp_path / "cg", "800000 100000")) == 2


def test_no_cgroup_files_means_no_quota(tmp_path, many_cpus):
    assert cgroup_cpu_limit(tmp_path) is None
    assert default_workers(tmp_path) == 8
    _v2(tmp_path / "bad", "garbage")
    assert default_workers(tmp_path / "bad") == 8


def test_novamind_workers_overrides_and_is_validated():
    assert Settings.from_env("biometric", env={"NOVAMIND_WORKERS": "3"}).workers == 3
    assert Settings.from_env("biometric", env={}).workers == default_workers()
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError, match="NOVAMIND_WORKERS"):
            Settings.from_env("biometric", env={"NOVAMIND_WORKERS": bad})
