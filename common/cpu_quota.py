"""How many CPUs this process may use: the container's CPU quota, cgroup-aware.

``os.cpu_count()`` reports the node's cores, not what the pod may use. The
quota is read from cgroup v2 ``cpu.max`` ("<quota> <period>" or "max"), or
cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1 = unlimited);
the CPU affinity mask bounds it from above.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup quota allows (e.g. 1.5), or None when unlimited or unknown."""
    v2 = root / "cpu.max"
    try:
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    for directory in (root / "cpu", root / "cpu,cpuacct", root):
        try:
            quota_us = int((directory / "cpu.cfs_quota_us").read_text())
            period_us = int((directory / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_workers(root: Path = CGROUP_ROOT) -> int:
    """Server processes for this container: its CPU quota rounded down, 1..available CPUs.

    Rounded down because a worker per started CPU (1.5 -> 2) would be throttled
    by the quota in every period it is busy.
    """
    cpus = available_cpus()
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.floor(limit))
    return max(1, cpus)
