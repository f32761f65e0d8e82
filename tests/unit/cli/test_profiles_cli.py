"""`kaic profiles list|show` through click's runner: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kaic.cli.profiles import profiles
from kaic.profile import builtin_dir


def invoke(*args: str) -> Result:
    return CliRunner().invoke(profiles, list(args))


def test_list_json() -> None:
    result = invoke("list", "-o", "json")
    assert result.exit_code == 0, result.output
    (entry,) = [p for p in json.loads(result.stdout) if p["id"] == "ai-v1.0"]
    assert entry["kubernetesVersions"] == ["1.33", "1.34", "1.35", "1.36", "1.37"]
    assert entry["requirementCount"] == 16
    assert len(entry["sha256"]) == 64


def test_list_table() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "ai-v1.0" in result.stdout
    assert "1.33, 1.34, 1.35, 1.36, 1.37" in result.stdout


def test_show_json_every_version() -> None:
    result = invoke("show", "ai-v1.0", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kubernetesVersion"] is None
    assert len(doc["requirements"]) == 16
    dra = doc["requirements"][0]
    assert dra["id"] == "dra_support"
    assert dra["levels"] == {"1.33": "SHOULD", "1.34": "MUST", "1.35": "MUST"}


def test_show_json_one_version() -> None:
    result = invoke("show", "ai-v1.0", "--kubernetes-version", "1.36", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["kubernetesVersion"]["chosen"] == "1.36"
    ids = [r["id"] for r in doc["requirements"]]
    assert "dra_support" not in ids and len(ids) == 14
    assert all(list(r["levels"]) == ["1.36"] for r in doc["requirements"])
    access = next(r for r in doc["requirements"] if r["id"] == "secure_accelerator_access")
    assert access["upstreamTest"] == "TestSecureAcceleratorAccess"


def test_show_table() -> None:
    result = invoke("show", "ai-v1.0")
    assert result.exit_code == 0, result.output
    for text in (
        "dra_support",
        "TestRobustCRDControllerOperation",
        "schedulingOrchestration",
        "hardware",
        "–",
    ):
        assert text in result.stdout
    one = invoke("show", "ai-v1.0", "--kubernetes-version", "1.35")
    assert "checklist 1.35" in one.stdout and "advanced_inference_ingress" not in one.stdout


def test_show_a_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "copy.yaml"
    path.write_bytes((builtin_dir() / "ai-v1.0.yaml").read_bytes())
    result = invoke("show", str(path), "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["path"] == str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("show", "ai-v1.0", "--kubernetes-version", "1.32"),
            "--kubernetes-version: Kubernetes 1.32 is not covered by profile ai-v1.0",
        ),
        (("show", "ai-v9"), "ai-v9: no built-in profile of that name (available: ai-v1.0)"),
        (("show", "./missing.yaml"), "missing.yaml: no such file"),
    ],
)
def test_bad_input_exits_2_with_the_reason_on_stderr(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_invalid_profile_file_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        (builtin_dir() / "ai-v1.0.yaml").read_text(encoding="utf-8").replace("SHOULD", "MAYBE", 1),
        encoding="utf-8",
    )
    result = invoke("show", str(path))
    assert result.exit_code == 2
    assert f"{path}: requirements[0].levels.1.33: 'MAYBE' is not one of ['MUST', 'SHOULD']" in result.stderr


def test_commands_import_neither_kubernetes_pytest_nor_jsonschema() -> None:
    code = (
        "import sys; from kaic.cli.profiles import profiles\n"
        "for args in (['list'], ['show', 'ai-v1.0'], ['show', 'ai-v1.0', '-o', 'json']):\n"
        "    profiles.main(args, standalone_mode=False)\n"
        "sys.stderr.write(repr(sorted(m for m in ('jsonschema', 'kubernetes', 'pytest') "
        "if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == "[]"
