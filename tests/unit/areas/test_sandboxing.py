"""The pure part of workload_sandboxing: which RuntimeClass is judged, reading a pod's report, the verdict."""

from __future__ import annotations

import dataclasses
import subprocess

from kaic.areas import sandboxing
from kaic.areas.sandboxing import View

CONTROL = View(
    "6.18.44 #1 SMP", "e4e08da8", 2, (), False, ("/var/lib/kubelet/pods/x/etc-hosts",), ("eth0", "lo")
)
GVISOR = View("4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016", "0b8c", 2, (), False, (), ("eth0", "lo"))


def classes(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "handler": handler} for name, handler in pairs]


def test_the_first_sandbox_by_name_or_handler_is_chosen():
    found = classes(("nvidia", "nvidia"), ("secure", "runsc"), ("gvisor", "runsc"))
    chosen, trail = sandboxing.choose_runtime_class(found, None)
    assert chosen == {"name": "gvisor", "handler": "runsc"} and "detected" in trail


def test_none_found_names_what_was_searched():
    chosen, trail = sandboxing.choose_runtime_class(classes(("nvidia", "nvidia")), None)
    assert chosen is None
    assert "gvisor|runsc|kata|sandboxed|quark|krun" in trail and "nvidia (handler nvidia)" in trail


def test_the_flag_wins_even_over_a_plain_name():
    found = classes(("gvisor", "runsc"), ("isolated", "my-vm"))
    assert sandboxing.choose_runtime_class(found, "isolated")[0] == {"name": "isolated", "handler": "my-vm"}
    chosen, trail = sandboxing.choose_runtime_class(found, "missing")
    assert chosen is None and "names no RuntimeClass" in trail


def test_the_report_parses_from_the_log_markers_and_from_the_termination_message():
    text = (
        "noise\nKAIC-SANDBOX-BEGIN\nkernel=4.4.0 #1 SMP\nboot_id=0b8c\nprocess_count=3\nhost_processes=\n"
        "dev_mem=absent\nhost_paths=\ninterfaces=eth0,lo,\nKAIC-SANDBOX-END\n"
    )
    view = sandboxing.parse_view(text)
    assert view == View("4.4.0 #1 SMP", "0b8c", 3, (), False, (), ("eth0", "lo"))
    assert sandboxing.parse_view(text.split("BEGIN\n")[1].split("KAIC-")[0]) == view
    assert sandboxing.parse_view("sh: not found") is None


def test_the_script_reports_this_host():
    """The script runs under any sh and its output parses (here: this host, so it is not isolated)."""
    out = subprocess.run(["sh", "-c", sandboxing.SCRIPT], capture_output=True, text=True, check=True).stdout
    view = sandboxing.parse_view(out)
    assert view is not None and view.kernel and view.process_count > 0
    assert sandboxing.problems(view, view)["kernel"]


def test_a_sandbox_with_its_own_kernel_and_nothing_of_the_host_is_isolated():
    assert sandboxing.summary(sandboxing.problems(GVISOR, CONTROL)) == ""


def test_a_runc_class_named_like_a_sandbox_shares_the_kernel_and_the_host_paths():
    found = sandboxing.problems(CONTROL, CONTROL)
    assert found["kernel"] and found["filesystem"]
    assert "shares the node's kernel" in sandboxing.summary(found)


def test_a_different_boot_of_the_same_kernel_build_is_another_kernel():
    kata = dataclasses.replace(CONTROL, boot_id="ffff", host_paths=())
    assert sandboxing.summary(sandboxing.problems(kata, CONTROL)) == ""


def test_each_leak_is_named_under_its_check():
    leaky = dataclasses.replace(
        GVISOR, host_processes=("kthreadd",), dev_mem=True, interfaces=("cni0", "eth0")
    )
    found = sandboxing.problems(leaky, CONTROL)
    assert found["processes"] == ["sees host processes: kthreadd"]
    assert found["memory"] == ["sees /dev/mem"]
    assert found["network"] == ["sees host network interfaces: cni0"]
    assert not found["kernel"] and not found["filesystem"]
