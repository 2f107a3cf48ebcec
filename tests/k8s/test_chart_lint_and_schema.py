"""`helm lint --strict` and values.schema.json: good values pass, bad values are refused."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest

from tests.k8s.chart import (
    CHART_DIR,
    NAMESPACE,
    PINNED_KUBE_VERSION,
    VALUES_FILES,
    deep_merge,
    load_values,
    render,
)

_WARNING = 2


@pytest.mark.parametrize("values_name", list(VALUES_FILES))
def test_helm_lint_strict_passes(values_name: str) -> None:
    report = helm.lint(
        CHART_DIR,
        load_values(values_name),
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{PINNED_KUBE_VERSION}",
    )
    assert report["total_charts_linted"] == 1
    problems = [m for m in report["messages"] if m["severity"] >= _WARNING]
    assert problems == []
    assert report["errors"] == []


def test_helm_lint_reports_schema_violation() -> None:
    """Control for the test above: lint does fail on bad values."""
    report = helm.lint(
        CHART_DIR, {"forecasting": {"replicaCount": "two"}}, strict=True, namespace=NAMESPACE
    )
    assert any("/forecasting/replicaCount" in e for e in report["errors"])


# (override, the schema path the error must name)
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"forecasting": {"replicaCount": "two"}}, "/forecasting/replicaCount"),
    ({"biometric": {"replicaCount": 0}}, "/biometric/replicaCount"),
    ({"orchestrator": {"port": -1}}, "/orchestrator/port"),
    ({"pharmacogenomics": {"healthPort": 70000}}, "/pharmacogenomics/healthPort"),
    ({"replicas": 3}, "'replicas' not allowed"),
    # The orchestrator has "replicas" (checked against its store), not "replicaCount".
    ({"orchestrator": {"replicaCount": 2}}, "'replicaCount' not allowed"),
    ({"image": {"tag": "latest"}}, "/image/tag"),
    ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ({"logging": {"level": "TRACE"}}, "/logging/level"),
    ({"otel": {"tracesExporter": "jaeger"}}, "/otel/tracesExporter"),
    ({"forecasting": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}, "/forecasting"),
    ({"forecasting": {"resources": {"limits": {"cpu": "lots"}}}}, "/forecasting/resources"),
    # A raw key in the environment is refused; keys are mounted files.
    (
        {"orchestrator": {"extraEnv": [{"name": "NOVAMIND_PSEUDONYM_KEY", "value": "00" * 32}]}},
        "/orchestrator/extraEnv/0/name",
    ),
    (
        {"orchestrator": {"extraEnv": [{"name": "NOVAMIND_X", "valueFrom": {}}]}},
        "'valueFrom' not allowed",
    ),
    # Production (requireSecrets) must not use chart-generated keys...
    ({"requireSecrets": True, "keys": {"create": True}}, "/keys/create"),
    # ...and without keys.create an existing Secret must be named.
    ({"keys": {"create": False, "existingSecret": ""}}, "/keys/existingSecret"),
    ({"keys": {"create": True, "devValues": {"store": "not-hex"}}}, "/keys/devValues/store"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_VALUES, ids=lambda v: str(v)[:60])
def test_schema_rejects_bad_values(override: dict[str, Any], expected: str) -> None:
    values = deep_merge(load_values("default"), override)
    if override.get("keys", {}).get("create"):
        values["requireSecrets"] = override.get("requireSecrets", False)
    with pytest.raises(helm.HelmValuesError) as excinfo:
        render(values)
    message = str(excinfo.value)
    assert "schema" in message
    assert expected in message


def test_schema_accepts_valid_overrides() -> None:
    """Control: the same keys with valid values render, so refusals above are the values'."""
    objects = render(
        {
            "forecasting": {"replicaCount": 3, "autoscaling": {"enabled": False}},
            "orchestrator": {
                "port": 50060,
                "extraEnv": [{"name": "NOVAMIND_MAX_CONCURRENT_RPCS", "value": "128"}],
            },
            "image": {"digest": "sha256:" + "a" * 64},
        }
    )
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert deployments["novamind-forecasting"]["spec"]["replicas"] == 3
    image = deployments["novamind-orchestrator"]["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert re.fullmatch(r"\S+:0\.1\.0@sha256:a{64}", image)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # A PDB that can never be satisfied would block every node drain.
        (
            {"forecasting": {"autoscaling": {"minReplicas": 1}, "podDisruptionBudget": {}}},
            "minAvailable must be below the replica count",
        ),
        ({"biometric": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "maxReplicas"),
        # Spans to a collector the default-deny policy would drop.
        ({"otel": {"tracesExporter": "otlp"}}, "networkPolicy.otlp.to is empty"),
    ],
    ids=["pdb-blocks-drains", "hpa-min-above-max", "otlp-without-egress"],
)
def test_templates_refuse_inconsistent_values(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(helm.HelmRenderError) as excinfo:
        render(deep_merge(load_values("default"), override))
    assert expected in str(excinfo.value)
