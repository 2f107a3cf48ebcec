"""Rendering the Helm chart offline, and reading what the rendered objects mean.

The chart is rendered with Helm's own Go SDK (``helm_python``), so the
templates, the values schema and ``fail`` checks behave exactly as in
``helm install``. Expected values (proto service names, module names) are read
from the repository, not from the chart, so a wrong chart cannot agree with
itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "k8s" / "novamind"
RELEASE = "novamind"
NAMESPACE = "novamind"
#: Kubernetes versions the rendered objects are validated against: the chart's
#: kubeVersion floor (native gRPC probes are GA in 1.27) and the pinned target.
KUBE_VERSIONS = ("1.27.0", "1.30.0")
PINNED_KUBE_VERSION = "1.30.0"

VALUES_FILES: dict[str, Path | None] = {
    "default": None,
    "dev": CHART_DIR / "values-dev.yaml",
    "prod": CHART_DIR / "values-prod.yaml",
}

ML_COMPONENTS = ("forecasting", "biometric", "pharmacogenomics")
COMPONENTS = ("orchestrator", *ML_COMPONENTS)
#: `python -m <module>` per service, as the README documents them.
MODULES = {
    "orchestrator": "twin_orchestrator",
    "forecasting": "forecasting_svc",
    "biometric": "biometric_svc",
    "pharmacogenomics": "pharmacogenomics_svc",
}
#: Proto area (protos/novamind/<area>/v1) of each service.
PROTO_AREAS = {
    "orchestrator": "twin",
    "forecasting": "forecasting",
    "biometric": "biometric",
    "pharmacogenomics": "pharmacogenomics",
}

Obj = dict[str, Any]


def proto_service_name(component: str) -> str:
    """``<package>.<Service>`` read from the component's .proto file."""
    proto_dir = REPO / "protos" / "novamind" / PROTO_AREAS[component] / "v1"
    (proto,) = sorted(proto_dir.glob("*.proto"))
    text = proto.read_text()
    package = re.search(r"^package\s+([\w.]+)\s*;", text, re.MULTILINE)
    service = re.search(r"^service\s+(\w+)\s*\{", text, re.MULTILINE)
    assert package and service, f"{proto} has no package or service"
    return f"{package.group(1)}.{service.group(1)}"


def load_values(name: str) -> dict[str, Any]:
    path = VALUES_FILES[name]
    if path is None:
        return {}
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART_DIR)


def render_templates(values: Mapping[str, Any]) -> dict[str, str]:
    """Template path -> rendered text; raises HelmValuesError / HelmRenderError."""
    return _chart().render(values=dict(values), name=RELEASE, namespace=NAMESPACE, is_install=True)


def parse_manifests(templates: Mapping[str, str]) -> list[Obj]:
    objects: list[Obj] = []
    for path, text in sorted(templates.items()):
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def render(values: Mapping[str, Any]) -> list[Obj]:
    return parse_manifests(render_templates(values))


class Manifests:
    """The objects of one render, with lookups by kind and component."""

    def __init__(self, name: str, values: Mapping[str, Any], templates: Mapping[str, str]):
        self.name = name
        self.values = values
        self.templates = dict(templates)
        self.objects = parse_manifests(templates)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def services(self, *, headless: bool = False) -> list[Obj]:
        """ClusterIP Services (the default), or the headless ones the orchestrator dials."""
        return [
            o for o in self.of_kind("Service") if (o["spec"].get("clusterIP") == "None") == headless
        ]

    def deployments(self) -> dict[str, Obj]:
        return {component_of(o): o for o in self.of_kind("Deployment")}

    def one(self, kind: str, name: str) -> Obj:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def test_pod(self) -> Obj:
        pods = [
            o
            for o in self.of_kind("Pod")
            if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
        ]
        assert len(pods) == 1
        return pods[0]


def component_of(obj: Obj) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def container(deployment: Obj) -> Obj:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(cont: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in cont.get("env", [])}


def pod_labels(workload: Obj) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return dict(workload["metadata"]["labels"])
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def mount_for(cont: Obj, path: str) -> Obj | None:
    """The volume mount whose mountPath is the longest prefix of ``path``."""
    best: Obj | None = None
    for mount in cont.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and (
            best is None or len(root) > len(best["mountPath"].rstrip("/"))
        ):
            best = mount
    return best


def volume(deployment: Obj, name: str) -> Obj:
    spec = deployment["spec"]["template"]["spec"]
    (match,) = [v for v in spec["volumes"] if v["name"] == name]
    return dict(match)


# --- quantities ---------------------------------------------------------------

_SUFFIX = {
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _SUFFIX[match.group(2) or ""]


# --- NetworkPolicy semantics --------------------------------------------------


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (an empty selector matches everything)."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Pod:
    """A pod as NetworkPolicy sees it: its labels and its namespace's labels."""

    def __init__(self, labels: Mapping[str, str], namespace: str = NAMESPACE):
        self.labels = dict(labels)
        self.namespace = namespace
        self.namespace_labels = {"kubernetes.io/metadata.name": namespace}


def _peer_matches(peer: Mapping[str, Any], other: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic is judged by selectors, not CIDRs
    ns_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    if ns_selector is None:
        in_namespace = other.namespace == policy_namespace
    else:
        in_namespace = selector_matches(ns_selector, other.namespace_labels)
    return in_namespace and selector_matches(pod_selector, other.labels)


def _port_matches(rule: Mapping[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports
    )


def _allowed(
    policies: list[Obj], subject: Pod, other: Pod, port: int, protocol: str, direction: str
) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers
            )
            if peer_ok and _port_matches(rule, port, protocol):
                return True
    return False


def ingress_allowed(policies: list[Obj], source: Pod, target: Pod, port: int) -> bool:
    """Whether ``target``'s ingress rules admit ``source`` on ``port`` (ignoring source egress)."""
    return _allowed(policies, target, source, port, "TCP", "Ingress")


def connection_allowed(
    policies: list[Obj], source: Pod, target: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """Whether ``source`` may open a connection to ``target:port`` (egress and ingress)."""
    return _allowed(policies, source, target, port, protocol, "Egress") and _allowed(
        policies, target, source, port, protocol, "Ingress"
    )


def iter_env_values(objects: list[Obj]) -> Iterator[tuple[str, Obj, Obj]]:
    """(object name, container, env entry) for every container of every workload."""
    for obj in objects:
        if obj["kind"] == "Deployment":
            spec = obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            spec = obj["spec"]
        else:
            continue
        for cont in spec.get("containers", []) + spec.get("initContainers", []):
            for entry in cont.get("env", []):
                yield obj["metadata"]["name"], cont, entry
