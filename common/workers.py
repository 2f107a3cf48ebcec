"""Several server processes per service, sharing one port (``NOVAMIND_WORKERS``).

The models are CPU-bound Python and numpy: threads of one process contend
for the GIL, so a 2-core pod serves faster with two processes. As in gRPC's
own multiprocessing example, the parent reserves the service port and the
health port with ``SO_REUSEPORT`` sockets that never listen, then starts
``workers`` child processes that each run a complete server (models, health,
reflection, interceptors) bound to the same ports with ``grpc.so_reuseport``;
the kernel spreads new connections over them. Children are started with the
``spawn`` method: no gRPC or torch state crosses a fork.

All workers append to the one audit log: ``common.audit`` takes an exclusive
``flock`` per record and re-reads the chain's tail when another process has
appended, so the hash chain stays one valid chain.

Shutdown: SIGTERM/SIGINT to the parent is forwarded to every child, which
goes NOT_SERVING and finishes in-flight calls within the grace period (the
same graceful stop as a single process). A child that dies on its own takes
the others down and the parent exits non-zero, so the orchestrator of the
pod (Kubernetes, systemd) restarts the whole service instead of running it
silently at reduced capacity.

The default number of workers is the container's CPU quota
(``common.cpu_quota``): a pod limited to 1 CPU runs one process, as before.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import Final

from common.settings import Settings

_LOGGER = logging.getLogger(__name__)

#: Extra seconds a child gets after the grace period before it is killed.
_STOP_SLACK_SECONDS: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1


def _reserve(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket holding ``port`` for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


WorkerTarget = Callable[[Settings, int], int]


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this worker if the supervisor dies (PR_SET_PDEATHSIG).

    A supervisor killed with SIGKILL cannot stop its workers; without this they
    would keep the port, serving as an orphaned half of a service.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's own stop remains
        pass
    if os.getppid() != parent_pid:  # died before the request took effect
        os._exit(1)


def _run_worker(target: WorkerTarget, settings: Settings, index: int, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    raise SystemExit(target(settings, index))


def supervise(settings: Settings, target: WorkerTarget) -> int:
    """Run ``settings.workers`` processes of ``target`` on shared ports until SIGTERM/SIGINT.

    ``target(settings, index)`` runs one complete server in the child and
    returns its exit code; it must be a module-level function (spawn pickles it).
    """
    context = multiprocessing.get_context("spawn")
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    children: list[multiprocessing.process.BaseProcess] = []
    with ExitStack() as held:
        main = held.enter_context(_reserve(settings.host, settings.port))
        port = int(main.getsockname()[1])
        health_port = settings.health_port
        if health_port >= 0:
            health = held.enter_context(_reserve(settings.host, health_port))
            health_port = int(health.getsockname()[1])
        shared = replace(settings, port=port, health_port=health_port)
        _LOGGER.info(
            "starting workers",
            extra={"service": settings.service, "workers": settings.workers, "port": port},
        )
        for index in range(settings.workers):
            child = context.Process(
                target=_run_worker,
                args=(target, shared, index, os.getpid()),
                name=f"{settings.service}-worker{index}",
            )
            child.start()
            children.append(child)
        code = 0
        try:
            while not stop_requested:
                dead = [c for c in children if not c.is_alive()]
                if dead:
                    _LOGGER.error(
                        "worker exited; stopping the service",
                        extra={"service": settings.service, "exit_code": dead[0].exitcode},
                    )
                    code = 1
                    break
                time.sleep(0.2)
        finally:
            _stop(children, settings.grace_seconds + _STOP_SLACK_SECONDS)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if any(c.exitcode not in (0, None) for c in children) and not stop_requested:
            code = 1
    return code


def _stop(children: list[multiprocessing.process.BaseProcess], timeout: float) -> None:
    """SIGTERM every live child (graceful stop), then wait; kill what outlives ``timeout``."""
    for child in children:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            _LOGGER.error("worker did not stop in time; killing it", extra={"pid": child.pid})
            child.kill()
            child.join()
