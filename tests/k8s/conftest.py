"""Renders the chart once per values file for the whole k8s test session."""

from __future__ import annotations

import pytest

from tests.k8s.chart import VALUES_FILES, Manifests, load_values, render_templates


@pytest.fixture(scope="session")
def rendered() -> dict[str, Manifests]:
    """values-file name (default, dev, prod) -> its rendered objects."""
    result: dict[str, Manifests] = {}
    for name in VALUES_FILES:
        values = load_values(name)
        result[name] = Manifests(name, values, render_templates(values))
    return result


@pytest.fixture(params=list(VALUES_FILES))
def manifests(request: pytest.FixtureRequest, rendered: dict[str, Manifests]) -> Manifests:
    """Each values file's render in turn."""
    return rendered[request.param]
