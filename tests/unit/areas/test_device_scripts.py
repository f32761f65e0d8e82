"""The in-container identity script against fake device trees: what a container would report, and how kaic
judges it (exactly the allocated devices; over-allocation and request-less leaks fail)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kaic.areas.accelerators import PROFILES, SCRIPT, parse_report

# Recorded on an NVIDIA H200 node (driver 580.159.04) with the same query the script runs.
H200_QUERY = "GPU-88861f72-144c-37ab-3cd6-4f97455986d8, 580.159.04\n"
H200_UUID = "GPU-88861f72-144c-37ab-3cd6-4f97455986d8"
SECOND_UUID = "GPU-0d4f2a7e-9c1b-4e55-8a31-7f2b6c0e9d14"
NVIDIA = PROFILES["nvidia"]
SIMULATED = PROFILES["simulated"]


def fake_root(tmp_path: Path, gpus: int, smi_output: str | None) -> tuple[Path, Path]:
    """A /dev with `gpus` GPU nodes plus the control nodes every NVIDIA host has, and an nvidia-smi that
    prints `smi_output` (None: the tool is not injected)."""
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    (root / "dev" / "nvidia-caps").mkdir(parents=True)
    bin_dir.mkdir()
    for name in ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", *(f"nvidia{i}" for i in range(gpus))]:
        (root / "dev" / name).touch()
    (root / "dev" / "nvidia-caps" / "nvidia-cap1").touch()
    if smi_output is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\ncat <<'EOF'\n{smi_output}EOF\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    return root, bin_dir


def run_script(profile, root: Path, bin_dir: Path, tmp_path: Path, env: dict[str, str] | None = None):
    result_file = tmp_path / "termination-log"
    settings = {e["name"]: e["value"] for e in profile.script_env()}
    shell_path = f"{bin_dir}:{Path(shutil.which('sh')).parent}:/usr/bin:/bin"
    proc = subprocess.run(
        ["sh", "-c", SCRIPT],
        env={
            "PATH": shell_path,
            "KAIC_ROOT": str(root),
            "KAIC_RESULT_FILE": str(result_file),
            **settings,
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    from_log, from_file = parse_report(proc.stdout), parse_report(result_file.read_text())
    assert from_log == from_file and from_log is not None
    return from_log


def test_one_allocated_gpu_is_seen_with_its_identity(tmp_path):
    root, bin_dir = fake_root(tmp_path, 1, H200_QUERY)
    report = run_script(NVIDIA, root, bin_dir, tmp_path)
    assert report.devices == ("/dev/nvidia0",)  # nvidiactl, nvidia-uvm*, nvidia-caps are not GPUs
    assert report.ids == (H200_UUID,) and report.tool == "present" and report.driver_version == "580.159.04"
    assert report.problems(NVIDIA, 1, (H200_UUID,)) == []


def test_over_allocation_fails(tmp_path):
    root, bin_dir = fake_root(tmp_path, 2, H200_QUERY + f"{SECOND_UUID}, 580.159.04\n")
    report = run_script(NVIDIA, root, bin_dir, tmp_path)
    assert report.devices == ("/dev/nvidia0", "/dev/nvidia1")
    problems = report.problems(NVIDIA, 1, (H200_UUID,))
    assert any("sees 2 device(s)" in p for p in problems) and any(
        "allocated ['GPU-8886" in p for p in problems
    )


def test_wrong_device_fails(tmp_path):
    root, bin_dir = fake_root(tmp_path, 1, f"{SECOND_UUID}, 580.159.04\n")
    report = run_script(NVIDIA, root, bin_dir, tmp_path)
    assert report.problems(NVIDIA, 1, (H200_UUID,)) == [
        f"reports identities ['{SECOND_UUID}'], allocated ['{H200_UUID}']"
    ]


def test_request_less_container_that_sees_a_gpu_is_a_leak(tmp_path):
    """NVIDIA_VISIBLE_DEVICES=all on a permissive runtime: the device node and nvidia-smi both leak."""
    root, bin_dir = fake_root(tmp_path, 1, H200_QUERY)
    report = run_script(NVIDIA, root, bin_dir, tmp_path, {"NVIDIA_VISIBLE_DEVICES": "all"})
    problems = report.problems(NVIDIA, 0)
    assert "sees 1 device(s) ['/dev/nvidia0'], allocated 0" in problems
    assert f"reports device identities ['{H200_UUID}'] without any allocation" in problems


def test_identity_leak_without_device_node_is_caught(tmp_path):
    root, bin_dir = fake_root(tmp_path, 0, H200_QUERY)
    assert run_script(NVIDIA, root, bin_dir, tmp_path).problems(NVIDIA, 0) == [
        f"reports device identities ['{H200_UUID}'] without any allocation"
    ]


def test_isolated_container_sees_nothing(tmp_path):
    root, bin_dir = fake_root(tmp_path, 0, None)
    report = run_script(NVIDIA, root, bin_dir, tmp_path)
    assert report.devices == () and report.ids == () and report.tool == "missing"
    assert report.problems(NVIDIA, 0) == []


def test_nvidia_smi_without_gpus_reports_no_identity(tmp_path):
    root, bin_dir = fake_root(tmp_path, 0, "No devices were found\n")
    report = run_script(NVIDIA, root, bin_dir, tmp_path)
    assert report.tool == "present" and report.ids == () and report.problems(NVIDIA, 0) == []


def test_simulated_identities_come_from_cdi_variables(tmp_path):
    root, bin_dir = fake_root(tmp_path, 0, None)
    env = {"GPU_DEVICE_3": "gpu-3", "GPU_DEVICE_3_SHARING_STRATEGY": "TimeSlicing", "OTHER": "gpu-9"}
    report = run_script(SIMULATED, root, bin_dir, tmp_path, env)
    assert report.ids == ("gpu-3",) and report.devices == ()
    assert report.problems(SIMULATED, 1, ("gpu-3",)) == []
    assert report.problems(SIMULATED, 0) == ["sees 1 device(s) ['gpu-3'], allocated 0"]


def test_amd_counts_render_nodes(tmp_path):
    root = tmp_path / "root"
    (root / "dev" / "dri").mkdir(parents=True)
    for name in ("renderD128", "renderD129", "card0"):
        (root / "dev" / "dri" / name).touch()
    report = run_script(PROFILES["amd"], root, tmp_path, tmp_path)
    assert report.devices == ("/dev/dri/renderD128", "/dev/dri/renderD129")
    assert report.ids == ("renderD128", "renderD129")


def test_report_from_logs_between_markers_and_garbage():
    text = (
        "noise\nKAIC-RESULT-BEGIN\n"
        '{"devices":[],"ids":["gpu-1"],"tool":"n/a","driverVersion":""}\nKAIC-RESULT-END\n'
    )
    assert parse_report(text).ids == ("gpu-1",)
    assert parse_report("exec format error") is None
