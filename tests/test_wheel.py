"""The built wheel carries the probes and the profiles: install it into a fresh venv and run kaic from
there."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_from_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("kaic-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    kaic = env_dir / "bin" / "kaic"
    run = {
        "cwd": tmp_path,
        "capture_output": True,
        "text": True,
        "timeout": 120,
    }  # not the checkout's folders

    where = subprocess.run(
        [python, "-c", "import kaic, pathlib; print(pathlib.Path(kaic.__file__).parent)"], check=False, **run
    )
    package = Path(where.stdout.strip())
    assert package.is_relative_to(env_dir), package
    assert (package / "profiles" / "ai-v1.0.yaml").is_file()
    assert sorted(p.name for p in (package / "conformance").glob("test_*.py"))

    listed = subprocess.run([kaic, "profiles", "list", "-o", "json"], check=False, **run)
    assert listed.returncode == 0, listed.stderr
    assert [p["id"] for p in json.loads(listed.stdout)] == ["ai-v1.0"]

    plan = subprocess.run([kaic, "plan", "-o", "json", "--kubernetes-version", "1.35"], check=False, **run)
    assert plan.returncode == 0, plan.stderr
    probes = json.loads(plan.stdout)["probes"]
    assert "dra_support.discovery" in {p["name"] for p in probes}
