"""Every rendered object is valid Kubernetes (strict schemas, no unknown fields)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.k8s.chart import KUBE_VERSIONS, NAMESPACE, Manifests

#: Custom resources kubernetes-validate has no schema for; checked field by field in
#: test_manifests_semantics.py instead.
CUSTOM_KINDS = {("cert-manager.io/v1", "Certificate")}
CLUSTER_SCOPED_KINDS: set[str] = set()


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_validates_strictly(manifests: Manifests, kube_version: str) -> None:
    checked = 0
    for obj in manifests.objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        where = f"{manifests.name}: {obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where} invalid against {kube_version} at {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{where}: {exc.message}")
        checked += 1
    assert checked >= 20  # every service's Deployment, Service, policies, ... were checked


def test_strict_validation_catches_unknown_fields(rendered: dict[str, Manifests]) -> None:
    """Control: a misspelt field in a rendered Deployment is refused."""
    deployment = rendered["default"].of_kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)


def test_every_object_is_namespaced_to_the_release(manifests: Manifests) -> None:
    for obj in manifests.objects:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            continue
        assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


def test_object_names_are_unique_per_kind(manifests: Manifests) -> None:
    keys = [(o["kind"], o["metadata"]["name"]) for o in manifests.objects]
    assert len(keys) == len(set(keys))
