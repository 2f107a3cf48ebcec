"""NetworkPolicies, evaluated as Kubernetes would: who may open which connection.

Sources and targets are the rendered pods' own labels, so a policy that
selects the wrong pods fails here even if it looks plausible.
"""

from __future__ import annotations

import pytest

from tests.k8s.chart import (
    ML_COMPONENTS,
    Manifests,
    Pod,
    connection_allowed,
    container,
    env_of,
    ingress_allowed,
    pod_labels,
)

DNS_POD = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")


def _pods(manifests: Manifests) -> dict[str, Pod]:
    pods = {c: Pod(pod_labels(d)) for c, d in manifests.deployments().items()}
    pods["test"] = Pod(pod_labels(manifests.test_pod()))
    return pods


def _ports(manifests: Manifests, component: str) -> tuple[int, int]:
    env = env_of(container(manifests.deployments()[component]))
    return int(env["NOVAMIND_PORT"]), int(env["NOVAMIND_HEALTH_PORT"])


def _strangers(pods: dict[str, Pod]) -> dict[str, Pod]:
    """Pods that must never reach a service: same namespace, other namespaces, look-alikes."""
    orchestrator_labels = pods["orchestrator"].labels
    return {
        "unlabelled pod in the namespace": Pod({"app": "debug"}),
        "orchestrator look-alike in another namespace": Pod(
            orchestrator_labels, namespace="attacker"
        ),
        "orchestrator of another release": Pod(
            {**orchestrator_labels, "app.kubernetes.io/instance": "other"}
        ),
    }


def test_policies_exist_and_default_deny_selects_every_pod(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    for name, pod in _pods(manifests).items():
        # Each pod is isolated both ways: an unknown peer on an unused port is refused.
        stranger = Pod({"app": "debug"})
        assert not connection_allowed(policies, stranger, pod, 8080), name
        assert not connection_allowed(policies, pod, stranger, 8080), name


def test_only_the_orchestrator_reaches_the_ml_grpc_ports(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    pods = _pods(manifests)
    for component in ML_COMPONENTS:
        grpc_port, _ = _ports(manifests, component)
        target = pods[component]
        sources = {n: p for n, p in {**pods, **_strangers(pods)}.items() if n != component}
        # The ML pod's own ingress rules admit the orchestrator and nobody else, whatever
        # the source's egress rules say (sources outside the release have none of ours)...
        admitted = {
            n for n, p in sources.items() if ingress_allowed(policies, p, target, grpc_port)
        }
        assert admitted == {"orchestrator"}, component
        # ...and the orchestrator's egress lets the connection out.
        connected = {
            n for n, p in sources.items() if connection_allowed(policies, p, target, grpc_port)
        }
        assert connected == {"orchestrator"}, component


def test_orchestrator_reaches_nothing_else_on_the_ml_pods(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    pods = _pods(manifests)
    for component in ML_COMPONENTS:
        grpc_port, health_port = _ports(manifests, component)
        for port in (health_port, grpc_port + 1, 22, 443):
            assert not connection_allowed(policies, pods["orchestrator"], pods[component], port)


def test_ml_services_cannot_call_each_other_or_the_orchestrator(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    pods = _pods(manifests)
    for source in ML_COMPONENTS:
        for target in (*ML_COMPONENTS, "orchestrator"):
            if target == source:
                continue
            grpc_port, _ = _ports(manifests, target)
            assert not connection_allowed(policies, pods[source], pods[target], grpc_port)


def test_helm_test_pod_reaches_every_health_port_only(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    pods = _pods(manifests)
    for component in manifests.deployments():
        grpc_port, health_port = _ports(manifests, component)
        assert connection_allowed(policies, pods["test"], pods[component], health_port)
        assert not connection_allowed(policies, pods["test"], pods[component], grpc_port)


def test_every_pod_resolves_dns(manifests: Manifests) -> None:
    policies = manifests.of_kind("NetworkPolicy")
    for name, pod in _pods(manifests).items():
        assert connection_allowed(policies, pod, DNS_POD, 53, "UDP"), name
        assert connection_allowed(policies, pod, DNS_POD, 53, "TCP"), name
        assert not connection_allowed(policies, pod, DNS_POD, 443), name


def test_orchestrator_clients_are_only_the_configured_ones(rendered: dict[str, Manifests]) -> None:
    prod = rendered["prod"]
    policies = prod.of_kind("NetworkPolicy")
    orchestrator = _pods(prod)["orchestrator"]
    grpc_port, _ = _ports(prod, "orchestrator")
    client_labels = {"novamind.io/mesh-client": "true"}
    assert connection_allowed(
        policies, Pod(client_labels, "clinical-domain"), orchestrator, grpc_port
    )
    assert not connection_allowed(policies, Pod({}, "clinical-domain"), orchestrator, grpc_port)
    assert not connection_allowed(
        policies, Pod(client_labels, "elsewhere"), orchestrator, grpc_port
    )
    assert not connection_allowed(policies, Pod(client_labels), orchestrator, grpc_port)
    # With no allowedClients (the chart default) nobody outside the release gets in.
    default = rendered["default"]
    assert not connection_allowed(
        default.of_kind("NetworkPolicy"),
        Pod(client_labels, "clinical-domain"),
        _pods(default)["orchestrator"],
        grpc_port,
    )


def test_spans_reach_only_the_configured_collector(rendered: dict[str, Manifests]) -> None:
    prod = rendered["prod"]
    policies = prod.of_kind("NetworkPolicy")
    port = prod.values["networkPolicy"]["otlp"]["port"]
    collector = Pod({"app.kubernetes.io/name": "opentelemetry-collector"}, "observability")
    impostor = Pod({"app.kubernetes.io/name": "opentelemetry-collector"}, "default")
    for name, pod in _pods(prod).items():
        expected = name != "test"
        assert connection_allowed(policies, pod, collector, port) is expected, name
        assert not connection_allowed(policies, pod, impostor, port), name
    default = rendered["default"]
    orchestrator = _pods(default)["orchestrator"]
    assert not connection_allowed(default.of_kind("NetworkPolicy"), orchestrator, collector, port)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_evaluator_control_without_policies(rendered: dict[str, Manifests], direction: str) -> None:
    """Control: with no policies everything is allowed, so the denials above are the policies'."""
    pods = _pods(rendered["default"])
    source, target = (Pod({"app": "debug"}), pods["forecasting"])
    if direction == "egress":
        source, target = target, source
    assert connection_allowed([], source, target, 50051)
