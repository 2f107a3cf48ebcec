"""Client-side balancing of mesh channels, on real mTLS servers on loopback.

- a channel to ``ipv4:a,b`` spreads calls over both servers and verifies the
  expected certificate name (a list of addresses has no host name to check);
- a server reporting NOT_SERVING gets no new calls (client-side health
  checking), and gets them again once SERVING;
- a server that goes away drops out while the calls keep succeeding;
- a certificate of another identity fails the handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from common.channels import mesh_channel
from common.tls import TlsFiles

ECHO_SERVICE = "novamind.test.v1.Echo"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class EchoReplica:
    server: grpc.aio.Server
    health: HealthServicer
    port: int
    calls: int = 0
    stopped: bool = field(default=False)


async def _start_replica(pki_dir: Path, identity: str) -> EchoReplica:
    server = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    files = TlsFiles.for_identity(pki_dir, identity)
    creds = grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    replica = EchoReplica(server, health, port)

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        replica.calls += 1
        return request

    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                ECHO_SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            )
        ]
    )
    await server.start()
    await health.set(ECHO_SERVICE, SERVING)
    return replica


@asynccontextmanager
async def _replicas(pki_dir: Path, identities: list[str]) -> AsyncIterator[list[EchoReplica]]:
    async with AsyncExitStack() as stack:
        replicas = []
        for identity in identities:
            replica = await _start_replica(pki_dir, identity)
            stack.push_async_callback(replica.server.stop, None)
            replicas.append(replica)
        yield replicas


def _channel(pki_dir: Path, replicas: list[EchoReplica], server_name: str) -> grpc.aio.Channel:
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    return mesh_channel(
        target,
        tls_dir=pki_dir,
        identity="orchestrator",
        service_names=(ECHO_SERVICE,),
        expected_server_name=server_name,
        health_service=ECHO_SERVICE,
    )


async def _call_many(channel: grpc.aio.Channel, n: int) -> None:
    echo = channel.unary_unary(f"/{ECHO_SERVICE}/Echo")
    for _ in range(n):
        assert await echo(b"ping", timeout=5) == b"ping"


def _reset(replicas: list[EchoReplica]) -> None:
    for replica in replicas:
        replica.calls = 0


async def test_ipv4_list_is_balanced_and_checks_the_expected_name(pki_dir):
    async with _replicas(pki_dir, ["biometric", "biometric"]) as replicas:
        async with _channel(pki_dir, replicas, "biometric") as channel:
            await _call_many(channel, 40)
    shares = [r.calls / 40 for r in replicas]
    assert all(0.25 <= s <= 0.75 for s in shares), shares


async def test_not_serving_replica_gets_no_calls_until_serving_again(pki_dir):
    async with _replicas(pki_dir, ["biometric", "biometric"]) as replicas:
        async with _channel(pki_dir, replicas, "biometric") as channel:
            await _call_many(channel, 4)
            await replicas[0].health.set(ECHO_SERVICE, NOT_SERVING)
            await asyncio.sleep(0.3)  # the Watch stream delivers the change
            _reset(replicas)
            await _call_many(channel, 20)
            assert [r.calls for r in replicas] == [0, 20]

            await replicas[0].health.set(ECHO_SERVICE, SERVING)
            await asyncio.sleep(0.3)
            _reset(replicas)
            await _call_many(channel, 20)
            assert replicas[0].calls >= 5, [r.calls for r in replicas]


async def test_replica_that_goes_away_drops_out(pki_dir):
    async with _replicas(pki_dir, ["biometric", "biometric"]) as replicas:
        async with _channel(pki_dir, replicas, "biometric") as channel:
            await _call_many(channel, 4)
            await replicas[1].server.stop(None)
            _reset(replicas)
            await _call_many(channel, 20)  # every call succeeds
            assert [r.calls for r in replicas] == [20, 0]


@pytest.mark.parametrize("presented", ["forecasting", "pharmacogenomics"])
async def test_certificate_of_another_service_fails_the_handshake(pki_dir, presented):
    """Issue 13, item 8: the biometric channel must not accept another service's certificate."""
    async with _replicas(pki_dir, [presented]) as replicas:
        async with _channel(pki_dir, replicas, "biometric") as channel:
            echo = channel.unary_unary(f"/{ECHO_SERVICE}/Echo")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await echo(b"ping", timeout=3)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert replicas[0].calls == 0
