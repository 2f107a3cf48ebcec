"""Rendering rules for scaling out: headless Services and dns:/// targets for the
ML services, connection ageing on every service, and the orchestrator's store
choice (SQLite on a claim, one replica; or external PostgreSQL, many replicas).
The PostgreSQL render is also validated strictly, like the values files' renders."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from common.settings import Settings
from tests.k8s.chart import (
    KUBE_VERSIONS,
    ML_COMPONENTS,
    NAMESPACE,
    Manifests,
    Pod,
    component_of,
    connection_allowed,
    container,
    deep_merge,
    env_of,
    load_values,
    mount_for,
    pod_labels,
    render,
    render_templates,
    selector_matches,
    volume,
)

DB_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "databases"}},
    "podSelector": {"matchLabels": {"app": "postgres"}},
}
DB_POD = Pod({"app": "postgres"}, namespace="databases")
POSTGRES: dict[str, Any] = {
    "orchestrator": {
        "replicas": 3,
        "store": {
            "postgresql": {
                "enabled": True,
                "existingSecret": "novamind-store-db",
                "caSecret": "novamind-store-db-ca",
                "networkPolicyTo": [DB_PEER],
            }
        },
    }
}


def _manifests(name: str, override: dict[str, Any]) -> Manifests:
    values = deep_merge(load_values("prod"), override)
    return Manifests(name, values, render_templates(values))


@pytest.fixture(scope="module")
def postgres() -> Manifests:
    return _manifests("postgres", POSTGRES)


def _env_entries(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(deployment)["env"]}


def test_each_ml_service_has_a_headless_service_selecting_its_pods(manifests: Manifests) -> None:
    deployments = manifests.deployments()
    headless = manifests.services(headless=True)
    assert sorted(component_of(s) for s in headless) == sorted(ML_COMPONENTS)
    for service in headless:
        component = component_of(service)
        assert service["spec"]["publishNotReadyAddresses"] is False  # unready pods leave DNS
        for other, deployment in deployments.items():
            matches = selector_matches(
                {"matchLabels": service["spec"]["selector"]}, pod_labels(deployment)
            )
            assert matches == (other == component), (component, other)


def test_ml_certificates_name_the_headless_services_dialled(postgres: Manifests) -> None:
    certificates = {component_of(c): c for c in postgres.of_kind("Certificate")}
    for service in postgres.services(headless=True):
        names = certificates[component_of(service)]["spec"]["dnsNames"]
        assert f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local" in names
    orchestrator_names = certificates["orchestrator"]["spec"]["dnsNames"]
    assert not any("headless" in name for name in orchestrator_names)


def test_every_service_ages_its_connections(manifests: Manifests) -> None:
    for component, deployment in manifests.deployments().items():
        env = env_of(container(deployment))
        assert int(env["NOVAMIND_MAX_CONNECTION_AGE_SECONDS"]) == 300, component
        assert int(env["NOVAMIND_MAX_CONNECTION_AGE_GRACE_SECONDS"]) == 30, component


def test_orchestrator_env_is_accepted_by_the_settings(manifests: Manifests) -> None:
    env = env_of(container(manifests.deployments()["orchestrator"]))
    settings = Settings.from_env("orchestrator", env=env)
    assert settings.biometric_addr.startswith("dns:///")
    assert settings.max_connection_age_seconds == 300


def test_without_headless_the_orchestrator_dials_the_cluster_ip_services() -> None:
    manifests = _manifests("no-headless", {"balancing": {"headless": False}})
    assert manifests.services(headless=True) == []
    env = env_of(container(manifests.deployments()["orchestrator"]))
    names = {component_of(s): s["metadata"]["name"] for s in manifests.services()}
    for component in ML_COMPONENTS:
        assert env[f"NOVAMIND_{component.upper()}_ADDR"].startswith(f"{names[component]}:")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"orchestrator": {"replicas": 2}}, "orchestrator.replicas > 1 needs"),
        (
            {
                "orchestrator": {
                    "replicas": 2,
                    "store": {"postgresql": {"enabled": True, "networkPolicyTo": [DB_PEER]}},
                }
            },
            "needs orchestrator.store.postgresql.existingSecret",
        ),
        (
            {"orchestrator": {"store": {"postgresql": {"enabled": True, "existingSecret": "s"}}}},
            "networkPolicyTo is empty",
        ),
    ],
    ids=["replicas-without-postgresql", "postgresql-without-secret", "postgresql-without-egress"],
)
def test_chart_refuses_a_store_it_cannot_run(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(helm.HelmRenderError) as excinfo:
        render(deep_merge(load_values("default"), override))
    assert expected in str(excinfo.value)


def test_schema_refuses_a_replica_count_below_one() -> None:
    with pytest.raises(helm.HelmValuesError) as excinfo:
        render(deep_merge(load_values("default"), {"orchestrator": {"replicas": 0}}))
    assert "/orchestrator/replicas" in str(excinfo.value)


def test_postgresql_store_scales_the_orchestrator(postgres: Manifests) -> None:
    orchestrator = postgres.deployments()["orchestrator"]
    assert orchestrator["spec"]["replicas"] == 3
    assert orchestrator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert orchestrator["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # No claim: the SQLite file is gone with the single-writer constraint.
    assert postgres.of_kind("PersistentVolumeClaim") == [
        c for c in postgres.of_kind("PersistentVolumeClaim") if component_of(c) == "models"
    ]
    assert "NOVAMIND_STORE_PATH" not in env_of(container(orchestrator))
    (pdb,) = [
        p for p in postgres.of_kind("PodDisruptionBudget") if component_of(p) == "orchestrator"
    ]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selector_matches(pdb["spec"]["selector"], pod_labels(orchestrator))


def test_postgresql_url_and_password_are_files_from_the_secret(postgres: Manifests) -> None:
    orchestrator = postgres.deployments()["orchestrator"]
    cont = container(orchestrator)
    env = env_of(cont)
    assert "NOVAMIND_STORE_URL" not in env  # secrets as files, never environment values
    for variable, key in (
        ("NOVAMIND_STORE_URL_FILE", "url"),
        ("NOVAMIND_STORE_PASSWORD_FILE", "password"),
    ):
        path = env[variable]
        mount = mount_for(cont, path)
        assert mount is not None and mount["readOnly"] is True, variable
        secret = volume(orchestrator, mount["name"])["secret"]
        assert secret["secretName"] == "novamind-store-db"
        assert {"key": key, "path": path.rsplit("/", 1)[1]} in secret["items"]
    ca_mount = mount_for(cont, "/etc/novamind/store-tls/ca.crt")
    assert ca_mount is not None
    assert volume(orchestrator, ca_mount["name"])["secret"]["secretName"] == "novamind-store-db-ca"
    assert all("valueFrom" not in e for e in cont["env"])


def test_postgresql_egress_admits_the_database_only(postgres: Manifests) -> None:
    policies = postgres.of_kind("NetworkPolicy")
    pods = {c: Pod(pod_labels(d)) for c, d in postgres.deployments().items()}
    assert connection_allowed(policies, pods["orchestrator"], DB_POD, 5432)
    assert not connection_allowed(policies, pods["orchestrator"], DB_POD, 5433)
    for component in ML_COMPONENTS:
        assert not connection_allowed(policies, pods[component], DB_POD, 5432), component
    other_db = Pod({"app": "postgres"}, namespace=NAMESPACE)
    assert not connection_allowed(policies, pods["orchestrator"], other_db, 5432)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_postgresql_render_validates_strictly(postgres: Manifests, kube_version: str) -> None:
    for obj in postgres.objects:
        if obj["kind"] == "Certificate":
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)


def test_postgresql_orchestrator_env_is_accepted_by_the_settings(postgres: Manifests) -> None:
    env = env_of(container(postgres.deployments()["orchestrator"]))
    settings = Settings.from_env("orchestrator", env=env)
    assert str(settings.store_url_file) == "/etc/novamind/store/url"
    assert str(settings.store_password_file) == "/etc/novamind/store/password"
    assert settings.store_pool_size == 10
