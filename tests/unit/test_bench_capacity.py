"""The capacity benchmark's CPU accounting counts a service's worker processes too."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.capacity import process_tree_cpu_seconds, replica_cores, replicas

# A parent that starts a child; the child burns 0.4 s of its own CPU time, says so,
# then waits: the parent itself stays idle.
_SCRIPT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", '''
import sys, time
while time.process_time() < 0.4:
    pass
print("burnt", flush=True)
time.sleep(60)
'''], stdout=sys.stdout)
child.wait()
"""


def test_cpu_of_a_process_tree_includes_its_children() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "burnt"
        time.sleep(0.05)  # the kernel's tick accounting catches up
        # At least the child's 0.4 s; the idle parent alone has used a small fraction of it.
        assert process_tree_cpu_seconds(parent.pid) >= 0.4
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()


def test_replicas_follow_the_sizing_rule() -> None:
    # 46.3 calls/s against a 20 calls/s bound at 70 %: ceil(3.31) = 4.
    assert replicas(46.3, 20.0) == 4
    # Never fewer than two, for availability.
    assert replicas(0.1, 500.0) == 2


def test_replica_cores_are_the_chart_limits(tmp_path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "forecasting: {resources: {limits: {cpu: '2'}}}\n"
        "biometric: {resources: {limits: {cpu: 1500m}}}\n"
        "pharmacogenomics: {resources: {limits: {cpu: 1}}}\n"
        "orchestrator: {resources: {limits: {cpu: 500m}}}\n"
    )
    assert replica_cores(values) == {
        "forecasting": 2.0,
        "biometric": 1.5,
        "pharmacogenomics": 1.0,
        "orchestrator": 0.5,
    }
