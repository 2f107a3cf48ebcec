"""The chart speaks the runtime's language: real settings, real servers, the real test hook.

The rendered environment is parsed by the services' own ``Settings``; each
Deployment's volumes are materialised the way the kubelet would (Secret keys
mapped through ``items``) and a real mesh server starts from them with
NOVAMIND_REQUIRE_SECRETS as rendered; then the `helm test` pod's command runs
against those servers' health ports.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from common.server import MeshServer, ServiceDefinition, create_server
from common.settings import Settings
from tests.k8s.chart import (
    Manifests,
    Obj,
    component_of,
    container,
    env_of,
    proto_service_name,
)

KEY_NAMES = ("pseudonym", "audit", "artifact", "store")


def test_rendered_environment_parses_as_settings(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        env = env_of(cont)
        settings = Settings.from_env(component, env=env)
        ports = {p["name"]: p["containerPort"] for p in cont["ports"]}
        assert settings.port == ports["grpc"]
        assert settings.health_port == ports["health"]
        assert settings.identity == manifests.values.get(component, {}).get("identity", component)
        assert settings.insecure is False
        assert settings.require_secrets is manifests.values.get("requireSecrets", True)
        # Every NOVAMIND_* variable is one the runtime knows (a typo would land in extra).
        unknown = {k for k in settings.extra if not k.endswith("_KEY_FILE")}
        assert unknown == set(), component
        if component == "orchestrator":
            assert settings.allowed_callers == ("*",)
        else:
            assert "orchestrator" in settings.allowed_callers
            assert "*" not in settings.allowed_callers


def _materialise(
    deployment: Obj, host_root: Path, secret_data: dict[str, dict[str, bytes]]
) -> dict[str, str]:
    """Create each mounted volume under host_root; return the env with paths remapped."""
    cont = container(deployment)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    remap: dict[str, Path] = {}
    for mount in cont["volumeMounts"]:
        host_dir = host_root / mount["name"]
        host_dir.mkdir(parents=True)
        source = volumes[mount["name"]]
        if "secret" in source:
            data = secret_data[source["secret"]["secretName"]]
            for item in source["secret"]["items"]:
                path = host_dir / item["path"]
                path.write_bytes(data[item["key"]])
                path.chmod(source["secret"]["defaultMode"])
        remap[mount["mountPath"].rstrip("/")] = host_dir
    env = env_of(cont)
    for name, value in env.items():
        for mount_path, host_dir in remap.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                env[name] = str(host_dir) + value[len(mount_path) :]
    return env


def _secret_data(manifests: Manifests, pki_dir: Path) -> dict[str, dict[str, bytes]]:
    """Secret contents as the cluster would hold them (kubernetes.io/tls layout, hex keys)."""
    data: dict[str, dict[str, bytes]] = {}
    for deployment in manifests.of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        identity = env_of(container(deployment))["NOVAMIND_IDENTITY"]
        for source in spec["volumes"]:
            if source["name"] == "tls":
                data[source["secret"]["secretName"]] = {
                    "ca.crt": (pki_dir / "ca.pem").read_bytes(),
                    "tls.crt": (pki_dir / f"{identity}.pem").read_bytes(),
                    "tls.key": (pki_dir / f"{identity}-key.pem").read_bytes(),
                }
            elif source["name"] == "keys":
                data.setdefault(
                    source["secret"]["secretName"],
                    {k: secrets.token_hex(32).encode() for k in KEY_NAMES},
                )
    return data


async def _run_hook(command: list[str], targets: list[str]) -> tuple[int, str]:
    script, timeout = command[2], command[3]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        timeout,
        *targets,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize("values_name", ["default", "dev", "prod"])
async def test_helm_test_hook_checks_real_servers_started_from_the_chart(
    values_name: str,
    rendered: dict[str, Manifests],
    pki_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = rendered[values_name]
    secret_data = _secret_data(manifests, pki_dir)
    service_host = {s["metadata"]["name"]: component_of(s) for s in manifests.of_kind("Service")}
    servers: dict[str, MeshServer] = {}
    try:
        for component, deployment in manifests.deployments().items():
            env = _materialise(deployment, tmp_path / component, secret_data)
            # Keys are read from the process environment, as in the pod.
            for name in [n for n in env if n.endswith("_KEY_FILE")]:
                monkeypatch.setenv(name, env[name])
            settings = Settings.from_env(component, env={**env, "NOVAMIND_HOST": "127.0.0.1"})
            definition = ServiceDefinition(
                service_names=(proto_service_name(component),), register=lambda server: None
            )
            mesh = create_server(settings, definition, port=0, health_port=0)
            await mesh.start()
            servers[component] = mesh
            for name in [n for n in env if n.endswith("_KEY_FILE")]:
                monkeypatch.delenv(name)

        command = manifests.test_pod()["spec"]["containers"][0]["command"]
        assert command[:2] == ["python", "-c"]
        targets = []
        for target in command[4:]:
            address, service = target.split("/", 1)
            component = service_host[address.rsplit(":", 1)[0]]
            targets.append(f"127.0.0.1:{servers[component].health_port}/{service}")
        assert len(targets) == 4

        code, output = await _run_hook(command, targets)
        assert code == 0, output
        assert output.count(": SERVING") == 4

        # A service that is not serving fails the test...
        await servers["biometric"].health_servicer.set(
            proto_service_name("biometric"), health_pb2.HealthCheckResponse.NOT_SERVING
        )
        code, output = await _run_hook(command, targets)
        assert code == 1
        assert output.count(": SERVING") == 3 and "NOT_SERVING" in output

        # ...and so does one that is gone.
        await servers.pop("forecasting").stop(grace=0)
        code, output = await _run_hook(command, targets)
        assert code == 1 and "UNAVAILABLE" in output
    finally:
        for mesh in servers.values():
            await mesh.stop(grace=0)
