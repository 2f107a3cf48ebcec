"""What the rendered objects mean: security, probes, scaling, storage, secrets, wiring."""

from __future__ import annotations

import base64
import re

import helm_python as helm
import pytest

from common.settings import Settings
from tests.k8s.chart import (
    COMPONENTS,
    ML_COMPONENTS,
    MODULES,
    NAMESPACE,
    REPO,
    Manifests,
    component_of,
    container,
    env_of,
    iter_env_values,
    mount_for,
    pod_labels,
    proto_service_name,
    quantity,
    render,
    selector_matches,
    volume,
)

APP_UID = 10001
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
#: Which keys each service reads (README: pseudonym and store belong to the
#: orchestrator, artifact signatures to the ML services, every service audits).
KEYS_READ = {
    "orchestrator": {"PSEUDONYM", "AUDIT", "STORE"},
    "forecasting": {"AUDIT", "ARTIFACT"},
    "biometric": {"AUDIT", "ARTIFACT"},
    "pharmacogenomics": {"AUDIT", "ARTIFACT"},
}


def _workloads(manifests: Manifests) -> list[dict]:
    return manifests.of_kind("Deployment") + manifests.of_kind("Pod")


def _pod_spec(workload: dict) -> dict:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def test_all_four_services_are_deployed(manifests: Manifests) -> None:
    deployments = manifests.deployments()
    assert set(deployments) == set(COMPONENTS)
    for component, deployment in deployments.items():
        assert container(deployment)["args"] == [MODULES[component]]
        assert (REPO / MODULES[component] / "__main__.py").is_file()


def test_every_object_carries_the_standard_labels(manifests: Manifests) -> None:
    for obj in manifests.objects:
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in STANDARD_LABELS if k not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "novamind"


def test_workloads_run_restricted(manifests: Manifests) -> None:
    """Pod Security Standard "restricted", read-only root, no API token, for every pod."""
    for workload in _workloads(manifests):
        spec = _pod_spec(workload)
        name = workload["metadata"]["name"]
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["runAsUser"] == APP_UID, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for cont in spec["containers"]:
            sc = cont["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["runAsNonRoot"] is True, name
            assert sc.get("privileged", False) is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc["capabilities"].get("add"), name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            # Python needs a writable /tmp; with a read-only root it must be a volume.
            tmp = mount_for(cont, "/tmp/x")
            assert tmp is not None and tmp["mountPath"] == "/tmp", name
            assert not tmp.get("readOnly", False), name


def test_each_service_has_its_own_service_account(manifests: Manifests) -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in manifests.of_kind("ServiceAccount")}
    used = []
    for deployment in manifests.of_kind("Deployment"):
        name = _pod_spec(deployment)["serviceAccountName"]
        assert name in accounts
        assert accounts[name]["automountServiceAccountToken"] is False
        used.append(name)
    assert len(set(used)) == len(used) == 4
    assert "default" not in used


def test_images_are_pinned(manifests: Manifests) -> None:
    for workload in _workloads(manifests):
        for cont in _pod_spec(workload)["containers"]:
            image = cont["image"]
            repository_and_tag = image.split("@")[0]
            tag = repository_and_tag.rsplit(":", 1)[1] if ":" in repository_and_tag else ""
            assert tag and tag != "latest", image
            assert cont["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("probe_kind", ["startupProbe", "livenessProbe", "readinessProbe"])
def test_probes_are_native_grpc_on_the_health_port(manifests: Manifests, probe_kind: str) -> None:
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        ports = {p["name"]: p["containerPort"] for p in cont["ports"]}
        env = env_of(cont)
        probe = cont[probe_kind]
        assert set(probe) - {"periodSeconds", "failureThreshold", "timeoutSeconds"} == {"grpc"}
        # The plaintext health-only port: the mTLS port would refuse the kubelet.
        assert probe["grpc"]["port"] == ports["health"] == int(env["NOVAMIND_HEALTH_PORT"])
        assert probe["grpc"]["port"] != ports["grpc"] == int(env["NOVAMIND_PORT"])
        assert probe["grpc"]["service"] == proto_service_name(component)


def test_ml_startup_probes_allow_slow_model_loading(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        startup = container(deployment)["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        if component in ML_COMPONENTS:
            assert budget >= 120, component


def test_resources_have_requests_within_limits(manifests: Manifests) -> None:
    for workload in _workloads(manifests):
        for cont in _pod_spec(workload)["containers"]:
            resources = cont["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, (workload["metadata"]["name"], resource)


def test_termination_grace_exceeds_the_service_grace(manifests: Manifests) -> None:
    for deployment in manifests.of_kind("Deployment"):
        grace = float(env_of(container(deployment))["NOVAMIND_GRACE_SECONDS"])
        assert _pod_spec(deployment)["terminationGracePeriodSeconds"] > grace


def test_orchestrator_is_a_single_recreated_replica(manifests: Manifests) -> None:
    orchestrator = manifests.deployments()["orchestrator"]
    assert orchestrator["spec"]["replicas"] == 1
    assert orchestrator["spec"]["strategy"] == {"type": "Recreate"}
    for hpa in manifests.of_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] != orchestrator["metadata"]["name"]


def test_store_is_on_a_persistent_claim(manifests: Manifests) -> None:
    orchestrator = manifests.deployments()["orchestrator"]
    cont = container(orchestrator)
    store_path = env_of(cont)["NOVAMIND_STORE_PATH"]
    mount = mount_for(cont, store_path)
    assert mount is not None and not mount.get("readOnly", False)
    claim = volume(orchestrator, mount["name"])["persistentVolumeClaim"]["claimName"]
    pvc = manifests.one("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_snapshot_retention_is_off_unless_set(manifests: Manifests) -> None:
    """No silent data loss on upgrade: the variable is unset unless a value asks for it."""
    env = env_of(container(manifests.deployments()["orchestrator"]))
    assert "NOVAMIND_SNAPSHOT_RETENTION_DAYS" not in env
    assert Settings.from_env("orchestrator", env=env).snapshot_retention_days == 0


@pytest.mark.parametrize("postgresql", [False, True])
def test_snapshot_retention_value_reaches_the_orchestrator(postgresql: bool) -> None:
    store: dict[str, object] = {"retentionDays": 30}
    if postgresql:
        store["postgresql"] = {
            "enabled": True,
            "existingSecret": "db",
            "networkPolicyTo": [{"ipBlock": {"cidr": "10.0.0.5/32"}}],
        }
    objects = render({"orchestrator": {"store": store}})
    deployments = {component_of(o): o for o in objects if o["kind"] == "Deployment"}
    env = env_of(container(deployments["orchestrator"]))
    assert env["NOVAMIND_SNAPSHOT_RETENTION_DAYS"] == "30"
    assert Settings.from_env("orchestrator", env=env).snapshot_retention_days == 30
    for component in ML_COMPONENTS:
        assert "NOVAMIND_SNAPSHOT_RETENTION_DAYS" not in env_of(container(deployments[component]))


@pytest.mark.parametrize("days", [-1, 1.5, "30", 36501])
def test_snapshot_retention_value_is_checked_by_the_schema(days: object) -> None:
    with pytest.raises(helm.HelmValuesError, match="retentionDays"):
        render({"orchestrator": {"store": {"retentionDays": days}}})


def test_writable_paths_are_writable_volumes(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        env = env_of(cont)
        audit = mount_for(cont, env["NOVAMIND_AUDIT_LOG"])
        assert audit is not None and not audit.get("readOnly", False), component
        assert env["NOVAMIND_AUDIT_LOG"].endswith(f"/{component}.jsonl")


def test_ml_services_mount_the_model_volume_read_only(manifests: Manifests) -> None:
    claims = set()
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        env = env_of(cont)
        if component not in ML_COMPONENTS:
            assert "NOVAMIND_MODEL_DIR" not in env
            continue
        mount = mount_for(cont, env["NOVAMIND_MODEL_DIR"])
        assert mount is not None and mount["readOnly"] is True, component
        source = volume(deployment, mount["name"])["persistentVolumeClaim"]
        assert source["readOnly"] is True
        claims.add(source["claimName"])
    assert len(claims) == 1  # one shared model store


def test_tls_secret_is_mapped_to_the_file_names_the_mesh_reads(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        env = env_of(cont)
        identity = env["NOVAMIND_IDENTITY"]
        mount = mount_for(cont, env["NOVAMIND_TLS_DIR"] + "/ca.pem")
        assert mount is not None and mount["readOnly"] is True
        assert mount["mountPath"] == env["NOVAMIND_TLS_DIR"]
        items = {i["key"]: i["path"] for i in volume(deployment, mount["name"])["secret"]["items"]}
        assert items == {
            "ca.crt": "ca.pem",
            "tls.crt": f"{identity}.pem",
            "tls.key": f"{identity}-key.pem",
        }, component


def test_each_service_mounts_exactly_the_keys_it_reads(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        cont = container(deployment)
        env = env_of(cont)
        key_files = {
            name.removeprefix("NOVAMIND_").removesuffix("_KEY_FILE"): path
            for name, path in env.items()
            if name.endswith("_KEY_FILE")
        }
        assert set(key_files) == KEYS_READ[component]
        for path in key_files.values():
            mount = mount_for(cont, path)
            assert mount is not None and mount["readOnly"] is True
            secret = volume(deployment, mount["name"])["secret"]
            relative = path.removeprefix(mount["mountPath"].rstrip("/") + "/")
            assert relative in {i["path"] for i in secret["items"]}
            assert secret["defaultMode"] & 0o007 == 0  # not world-readable
        assert env["NOVAMIND_REQUIRE_SECRETS"] == (
            "1" if manifests.values.get("requireSecrets", True) else "0"
        )


def test_no_secret_material_in_plain_environment(manifests: Manifests) -> None:
    hex_key = re.compile(r"\b[0-9a-fA-F]{64,}\b")
    entries = list(iter_env_values(manifests.objects))
    assert entries
    for name, cont, entry in entries:
        assert "valueFrom" not in entry, (name, entry["name"])
        assert not entry["name"].endswith("_KEY"), (name, entry["name"])
        value = entry.get("value", "")
        assert not hex_key.search(value), (name, entry["name"])
        assert "PRIVATE KEY" not in value, (name, entry["name"])
        assert "envFrom" not in cont


def test_production_requires_keys_from_an_existing_secret(rendered: dict[str, Manifests]) -> None:
    prod = rendered["prod"]
    assert prod.of_kind("Secret") == []
    for deployment in prod.of_kind("Deployment"):
        assert env_of(container(deployment))["NOVAMIND_REQUIRE_SECRETS"] == "1"
        keys = volume(deployment, "keys")["secret"]["secretName"]
        assert keys == prod.values["keys"]["existingSecret"]


def test_dev_keys_secret_is_random_hex_and_marked_dev_only(rendered: dict[str, Manifests]) -> None:
    (secret,) = rendered["dev"].of_kind("Secret")
    assert "development" in secret["metadata"]["annotations"]["novamind.io/purpose"]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(decoded) == {"pseudonym", "audit", "artifact", "store"}
    for value in decoded.values():
        assert re.fullmatch(r"[0-9a-f]{64}", value)
        assert len(bytes.fromhex(value)) >= 32
    assert len(set(decoded.values())) == 4  # independent keys, not one value reused


def test_hpa_and_pdb_exist_for_exactly_the_ml_services(rendered: dict[str, Manifests]) -> None:
    for name in ("default", "prod"):
        manifests = rendered[name]
        deployments = manifests.deployments()
        hpas = manifests.of_kind("HorizontalPodAutoscaler")
        targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas}
        assert targets == {deployments[c]["metadata"]["name"] for c in ML_COMPONENTS}
        for hpa in hpas:
            assert hpa["apiVersion"] == "autoscaling/v2"
            (metric,) = hpa["spec"]["metrics"]
            assert metric["resource"]["name"] == "cpu"
            assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        pdbs = manifests.of_kind("PodDisruptionBudget")
        covered = {
            component
            for component, deployment in deployments.items()
            for pdb in pdbs
            if selector_matches(pdb["spec"]["selector"], pod_labels(deployment))
        }
        assert covered == set(ML_COMPONENTS) and len(pdbs) == 3
        for pdb in pdbs:
            hpa = next(h for h in hpas if component_of(h) == component_of(pdb))
            assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    dev = rendered["dev"]
    assert dev.of_kind("HorizontalPodAutoscaler") == dev.of_kind("PodDisruptionBudget") == []


def test_ml_replicas_are_spread_across_nodes(manifests: Manifests) -> None:
    if manifests.values.get("scheduling", {}).get("podAntiAffinity") == "none":
        # Switched off for one-node dev clusters: then nothing constrains scheduling.
        for deployment in manifests.of_kind("Deployment"):
            spec = _pod_spec(deployment)
            assert "affinity" not in spec and "topologySpreadConstraints" not in spec
        return
    for component, deployment in manifests.deployments().items():
        spec = _pod_spec(deployment)
        if component not in ML_COMPONENTS:
            continue
        own = pod_labels(deployment)
        constraints = spec["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} >= {"kubernetes.io/hostname"}
        assert all(selector_matches(c["labelSelector"], own) for c in constraints)
        anti = spec["affinity"]["podAntiAffinity"]
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [
            t["podAffinityTerm"] for t in anti["preferredDuringSchedulingIgnoredDuringExecution"]
        ]
        assert all(selector_matches(t["labelSelector"], own) for t in terms)
        # The selector picks this service only, not its siblings.
        others = [d for c, d in manifests.deployments().items() if c != component]
        assert not any(
            selector_matches(t["labelSelector"], pod_labels(d)) for t in terms for d in others
        )


def test_services_select_their_pods_and_name_the_grpc_port(manifests: Manifests) -> None:
    deployments = manifests.deployments()
    for service in manifests.of_kind("Service"):
        component = component_of(service)
        deployment = deployments[component]
        assert selector_matches(
            {"matchLabels": service["spec"]["selector"]}, pod_labels(deployment)
        )
        others = [d for c, d in deployments.items() if c != component]
        assert not any(
            selector_matches({"matchLabels": service["spec"]["selector"]}, pod_labels(d))
            for d in others
        )
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["grpc"]["targetPort"] == "grpc"
        assert ports["grpc"]["port"] == int(env_of(container(deployment))["NOVAMIND_PORT"])
        if service["spec"].get("clusterIP") != "None":
            assert ports["health"]["targetPort"] == "health"


def test_orchestrator_dials_the_ml_services_through_their_headless_services(
    manifests: Manifests,
) -> None:
    env = env_of(container(manifests.deployments()["orchestrator"]))
    headless = {component_of(s): s for s in manifests.services(headless=True)}
    assert set(headless) == set(ML_COMPONENTS)
    for component in ML_COMPONENTS:
        service = headless[component]
        grpc_port = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
        fqdn = f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
        assert env[f"NOVAMIND_{component.upper()}_ADDR"] == f"dns:///{fqdn}:{grpc_port['port']}"
        # TLS checks the certificate name of that service, not the DNS name dialled.
        identity = env_of(container(manifests.deployments()[component]))["NOVAMIND_IDENTITY"]
        assert env[f"NOVAMIND_{component.upper()}_SERVER_NAME"] == identity


def test_tracing_follows_the_values(manifests: Manifests) -> None:
    exporter = manifests.values.get("otel", {}).get("tracesExporter", "none")
    for component, deployment in manifests.deployments().items():
        env = env_of(container(deployment))
        assert env["OTEL_TRACES_EXPORTER"] == exporter
        assert env["OTEL_SERVICE_NAME"].endswith(component)
        if exporter == "otlp":
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http")


def test_cert_manager_certificates_match_the_mounted_identities(
    rendered: dict[str, Manifests],
) -> None:
    prod = rendered["prod"]
    certificates = {c["spec"]["secretName"]: c for c in prod.of_kind("Certificate")}
    services = {component_of(s): s["metadata"]["name"] for s in prod.services()}
    for component, deployment in prod.deployments().items():
        identity = env_of(container(deployment))["NOVAMIND_IDENTITY"]
        certificate = certificates[volume(deployment, "tls")["secret"]["secretName"]]
        spec = certificate["spec"]
        assert spec["commonName"] == identity  # the mesh authorizes by subject CN
        assert {"server auth", "client auth"} <= set(spec["usages"])
        assert services[component] in spec["dnsNames"]
        assert f"{services[component]}.{NAMESPACE}.svc" in spec["dnsNames"]
        assert identity in spec["dnsNames"]  # the name the orchestrator requires of it
        assert spec["issuerRef"] == prod.values["tls"]["certManager"]["issuerRef"]
    operator = [c for c in certificates.values() if c["spec"]["commonName"] == "operator"]
    assert len(operator) == 1 and operator[0]["spec"]["usages"].count("server auth") == 0
    assert rendered["default"].of_kind("Certificate") == []


def test_helm_test_pod_checks_every_service_health_port(manifests: Manifests) -> None:
    pod = manifests.test_pod()
    assert pod["spec"]["restartPolicy"] == "Never"
    args = pod["spec"]["containers"][0]["command"][3:]
    targets = {a.split("/", 1)[0]: a.split("/", 1)[1] for a in args[1:]}
    expected = {}
    for service in manifests.services():
        health = next(p for p in service["spec"]["ports"] if p["name"] == "health")
        expected[f"{service['metadata']['name']}:{health['port']}"] = proto_service_name(
            component_of(service)
        )
    assert targets == expected
