"""Values files are documented; the Dockerfile agrees with the chart and the package layout.

No Docker engine runs here, so the image is checked as text against what the
chart assumes of it (user, entry point, paths) and what pyproject.toml installs.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.k8s.chart import CHART_DIR, COMPONENTS, MODULES, REPO, Manifests, container, env_of

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
VALUES_PATHS = [CHART_DIR / n for n in ("values.yaml", "values-dev.yaml", "values-prod.yaml")]
_KEY_LINE = re.compile(r"^(\s*)(- )?([\w./-]+|\"[^\"]+\"):(\s|$)")


@pytest.mark.parametrize("path", VALUES_PATHS, ids=lambda p: p.name)
def test_every_value_is_documented_by_a_comment_above_it(path: Path) -> None:
    undocumented = []
    previous = ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        if _KEY_LINE.match(line) and not previous.lstrip().startswith("#"):
            undocumented.append(f"{path.name}:{number}: {line.strip()}")
        previous = line
    assert undocumented == []


def test_schema_is_strict_where_it_matters() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    ml = schema["definitions"]["mlService"]
    assert ml["additionalProperties"] is False
    assert ml["properties"]["replicaCount"] == {"type": "integer", "minimum": 1}
    assert "replicaCount" not in schema["properties"]["orchestrator"]["properties"]


def _dockerfile() -> str:
    # Join continuation lines so each instruction is one line.
    return re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())


def _final_stage() -> str:
    return _dockerfile().split("\nFROM ")[-1]


def test_image_is_multi_stage_on_a_pinned_python() -> None:
    text = _dockerfile()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and base.group(1) == "python:3.11.7-slim-bookworm"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"].startswith(">=3.11")
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.MULTILINE)
    assert [s[0] for s in stages] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "--extra-index-url" in text and "download.pytorch.org/whl/cpu" in text
    assert "grpc_tools.protoc" in text


def test_image_runs_as_the_user_the_chart_expects(rendered: dict[str, Manifests]) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", _final_stage(), re.MULTILINE)
    assert user
    for deployment in rendered["default"].of_kind("Deployment"):
        pod_sc = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (pod_sc["runAsUser"], pod_sc["runAsGroup"]) == (int(user[1]), int(user[2]))


def test_entrypoint_takes_the_module_the_chart_passes() -> None:
    final = _final_stage()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", final, re.MULTILINE)
    cmd = re.search(r"^CMD (\[.*\])$", final, re.MULTILINE)
    assert entrypoint and cmd  # exec form: python is PID 1 and gets SIGTERM
    assert json.loads(entrypoint.group(1)) == ["python", "-m"]
    assert json.loads(cmd.group(1)) == [MODULES["orchestrator"]]


def test_image_installs_every_package_pyproject_declares() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", _dockerfile(), re.MULTILINE))
    # novamind (the stubs) is generated in the build from the copied protos/.
    assert copied == (packages - {"novamind"}) | {"protos"}
    assert set(MODULES.values()) <= copied


def test_image_paths_match_the_chart_mounts(rendered: dict[str, Manifests]) -> None:
    image_env = dict(
        re.findall(
            r"\b([A-Z_]+)=(\S+)",
            " ".join(line for line in _final_stage().splitlines() if line.startswith("ENV ")),
        )
    )
    assert image_env["PYTHONDONTWRITEBYTECODE"] == "1"
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        assert image_env[name].startswith("/tmp"), name  # the chart's /tmp emptyDir
    deployments = rendered["default"].deployments()
    for component in COMPONENTS:
        env = env_of(container(deployments[component]))
        assert env["NOVAMIND_TLS_DIR"] == image_env["NOVAMIND_TLS_DIR"]
        for name in ("NOVAMIND_MODEL_DIR", "NOVAMIND_STORE_PATH"):
            if name in env:
                assert env[name] == image_env[name], name
    workdir = re.search(r"^WORKDIR (\S+)$", _final_stage(), re.MULTILINE)
    assert workdir and workdir.group(1) == "/app"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".venv*", "var", "tests", "bench", "docs"} <= patterns
    copied = set(re.findall(r"^COPY (?!--)(\S+)", _dockerfile(), re.MULTILINE))
    needed = {c.split()[0] for c in copied} | {"README.md"}
    assert needed.isdisjoint(patterns)
