"""Fuzz every RPC of every service on the real mesh (four service processes).

A fixed seed and a few thousand cases in `make test`; `make fuzz` runs the
same fuzzer longer (tests/fuzz/__main__.py, figures in docs/benchmarks/fuzz.md).
No case may end in UNKNOWN or INTERNAL (directly or inside an insights
section), none may hang or kill a server.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from common.tls import channel_credentials
from novamind.twin.v1 import twin_pb2
from tests.conftest import free_port, running
from tests.fuzz.mesh_fuzzer import BATCH, Target, fuzz_mesh, fuzz_target, running_mesh_processes
from tests.integration.probe_service import PROBE_SERVICE, probe_definition

#: Per RPC; 13 RPCs today, so about 2,000 cases in all.
CASES_PER_RPC = 160

pytestmark = pytest.mark.slow


def test_fuzzing_every_rpc_finds_no_internal_error_hang_or_crash(tmp_path, pki_dir, trained_models):
    model_dir, key_dir = trained_models
    with running_mesh_processes(tmp_path, pki_dir, model_dir, key_dir, free_port) as (
        ports,
        processes,
    ):
        report = fuzz_mesh(ports, processes, pki_dir, CASES_PER_RPC, progress=print)
    assert len(report.outcomes) >= 13, "every RPC of the four services is fuzzed"
    assert report.cases >= 13 * CASES_PER_RPC * 0.9
    assert report.failures == []
    # The fuzzer reached past transport checks: some cases were valid enough to succeed.
    assert sum(o.counts["OK"] for o in report.outcomes.values()) > 0
    assert sum(o.counts["INVALID_ARGUMENT"] for o in report.outcomes.values()) > 0


async def test_the_fuzzer_reports_internal_errors(make_settings, pki_dir):
    """The fuzzer can fail: against an RPC that raises on every request it reports each one."""
    async with running(make_settings("orchestrator"), probe_definition()) as mesh:
        target = Target(
            PROBE_SERVICE, "Fail", twin_pb2.GenerateInsightsRequest.DESCRIPTOR, mesh.port
        )
        creds = channel_credentials(pki_dir, "operator")
        with grpc.secure_channel(f"localhost:{mesh.port}", creds) as channel:
            with ThreadPoolExecutor(BATCH) as pool:
                outcome = await asyncio.to_thread(
                    fuzz_target, channel, target, twin_pb2.GenerateInsightsRequest(), 48, pool
                )
    assert outcome.counts["INTERNAL"] > 0
    assert len(outcome.failures) == outcome.counts["INTERNAL"]
    assert all(": INTERNAL: " in failure for failure in outcome.failures)
