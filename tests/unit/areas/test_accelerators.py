"""Accelerator detection: which profile and allocation path a cluster's facts lead to, and why."""

from __future__ import annotations

import pytest
from api_objects import rslice

from kaic.areas.accelerators import PROFILES, NoAccelerators, detect, require_dra_v1
from kaic.kube import resourceslices
from kaic.results.outcomes import ProbeError, Unknown


def node(name: str, resources: dict[str, str] | None = None, ready: bool = True, **labels: str) -> dict:
    return {
        "name": name,
        "ready": ready,
        "unschedulable": False,
        "labels": labels,
        "taints": [],
        "extendedResources": resources or {},
        "runsContainers": False,
        "containerRuntime": "kwok://simulated",
    }


def facts(*, slices=None, classes=None, plugin_nodes=(), dra_nodes=(), version="v1") -> dict:
    return {
        "errors": {},
        "dra": {"servedVersions": [version] if version else [], "version": version},
        "resourceSlices": slices or {},
        "deviceClasses": classes or [],
        "nodes": {
            "total": 4,
            "ready": 4,
            "withExtendedResources": list(plugin_nodes),
            "withDraDevicesOnly": list(dra_nodes),
        },
        "runtimeClasses": [],
    }


def dra_driver(driver: str, nodes: dict[str, int], complete: bool = True) -> dict:
    """Discovery's facts of one driver publishing a pool per node (an incomplete one waits for a second
    slice)."""
    return resourceslices.inventory(
        rslice(driver, n, 1, d, n, count=1 if complete else 2) for n, d in nodes.items()
    )


def device_class(name: str, driver: str, extended: str = "") -> dict:
    return {"name": name, "selectors": [f"device.driver == '{driver}'"], "extendedResourceName": extended}


# The local reference cluster's conformant shape: a DRA pool and a device-plugin pool.
LOCAL = facts(
    slices=dra_driver("gpu.example.com", {"kaic-dra-0": 8, "kaic-dra-1": 8}),
    classes=[device_class("gpu.example.com", "gpu.example.com")],
    plugin_nodes=[node("kaic-device-plugin-0", {"example.com/gpu": "8"})],
    dra_nodes=[node("kaic-dra-0"), node("kaic-dra-1")],
)


def test_auto_prefers_a_complete_dra_pool_on_ready_nodes():
    chosen = detect(LOCAL)
    assert (chosen.profile.name, chosen.path, chosen.device_class) == ("simulated", "dra", "gpu.example.com")
    assert chosen.nodes == ("kaic-dra-0", "kaic-dra-1")
    assert chosen.found["chosen"] == {"profile": "simulated", "path": "dra"}
    assert chosen.found["trail"]["nvidia"]["dra"] == "no ResourceSlice of gpu.nvidia.com publishes devices"


def test_device_plugin_mode_and_fallback():
    chosen = detect(LOCAL, "simulated", "device-plugin")
    assert (chosen.path, chosen.extended_resource, chosen.nodes) == (
        "device-plugin",
        "example.com/gpu",
        ("kaic-device-plugin-0",),
    )
    not_ready = {
        **LOCAL,
        "nodes": {**LOCAL["nodes"], "withDraDevicesOnly": [node("kaic-dra-0", ready=False)]},
    }
    assert detect(not_ready).path == "device-plugin"  # no DRA pool on a Ready node
    incomplete = {**LOCAL, "resourceSlices": dra_driver("gpu.example.com", {"kaic-dra-0": 8}, complete=False)}
    chosen = detect(incomplete)
    assert chosen.path == "device-plugin"
    assert chosen.found["trail"]["simulated"]["dra"] == (
        "no ResourceSlice of gpu.example.com publishes devices "
        "(gpu.example.com: pool kaic-dra-0 generation 1 has 1 of 2 slices (incomplete, not counted))"
    )


def test_dra_mode_without_dra_is_unknown_with_the_trail():
    only_plugin = {**LOCAL, "resourceSlices": {}}
    with pytest.raises(Unknown, match="gpu.example.com publishes devices") as raised:
        detect(only_plugin, "auto", "dra")
    assert not isinstance(raised.value, NoAccelerators)


def test_device_plugin_mode_refuses_a_resource_mapped_to_dra():
    mapped = {
        **LOCAL,
        "deviceClasses": [device_class("gpu.example.com", "gpu.example.com", "example.com/gpu")],
    }
    with pytest.raises(Unknown, match="maps example.com/gpu to DRA"):
        detect(mapped, "simulated", "device-plugin")


def test_nvidia_by_device_plugin_and_by_dra():
    plugin = facts(plugin_nodes=[node("gpu-a", {"nvidia.com/gpu": "4"})])
    assert detect(plugin).profile.name == "nvidia"
    dra = facts(
        slices=dra_driver("gpu.nvidia.com", {"gpu-a": 4}),
        classes=[device_class("gpu.nvidia.com", "gpu.nvidia.com")],
        dra_nodes=[node("gpu-a")],
    )
    chosen = detect(dra)
    assert (chosen.profile.name, chosen.path, chosen.device_class) == ("nvidia", "dra", "gpu.nvidia.com")


def test_dra_needs_a_device_class_and_v1():
    slices = dra_driver("gpu.nvidia.com", {"gpu-a": 4})
    with pytest.raises(Unknown, match="no DeviceClass selects gpu.nvidia.com"):
        detect(facts(slices=slices, dra_nodes=[node("gpu-a")]))
    beta = facts(
        slices=slices,
        classes=[device_class("gpu.nvidia.com", "gpu.nvidia.com")],
        version="v1beta1",
        dra_nodes=[node("gpu-a")],
    )
    with pytest.raises(Unknown, match="resource.k8s.io/v1 is not served"):
        detect(beta)


def test_unknown_hardware_reports_the_inventory():
    odd = facts(plugin_nodes=[node("npu-a", {"vendor.example/npu": "2"})])
    with pytest.raises(Unknown, match=r"no recognised accelerator.*vendor.example/npu") as raised:
        detect(odd)
    assert not isinstance(raised.value, NoAccelerators)


def test_nothing_at_all_is_no_accelerators():
    with pytest.raises(NoAccelerators, match="no accelerators"):
        detect(facts())


def test_a_requested_profile_that_is_absent_is_unknown_and_bad_names_are_errors():
    with pytest.raises(Unknown, match="nvidia: dra no ResourceSlice"):
        detect(LOCAL, "nvidia")
    with pytest.raises(ProbeError, match="unknown accelerator profile 'tpu'"):
        detect(LOCAL, "tpu")
    with pytest.raises(ProbeError, match="unknown allocation mode"):
        detect(LOCAL, "auto", "both")


def test_profiles_are_complete_and_honest_about_testing():
    for profile in PROFILES.values():
        assert profile.dra_drivers and profile.device_classes and profile.extended_resources, profile.name
        assert profile.identity in ("nvidia-smi", "env", "nodes", "drm-pci")
        assert profile.count_by in ("devices", "ids")
        assert profile.device_globs or profile.count_by == "ids", profile.name
    assert {p.name for p in PROFILES.values() if p.tested.startswith("untested")} == {
        "amd",
        "intel",
        "google-tpu",
    }
    assert PROFILES["nvidia"].tolerations() == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert (
        PROFILES["nvidia"].identity_of({"name": "gpu-0", "attributes": {"uuid": {"string": "GPU-1"}}})
        == "GPU-1"
    )
    assert (
        PROFILES["simulated"].identity_of({"name": "gpu-0", "attributes": {"uuid": {"string": "GPU-1"}}})
        == "gpu-0"
    )


def test_nodes_that_run_containers_are_preferred_when_there_are_any():
    real = dict(node("kaic-worker"), runsContainers=True)
    mixed = {
        **LOCAL,
        "resourceSlices": dra_driver("gpu.example.com", {"kaic-dra-0": 8, "kaic-worker": 8}),
        "nodes": {**LOCAL["nodes"], "withDraDevicesOnly": [node("kaic-dra-0"), real]},
    }
    assert detect(mixed).nodes == ("kaic-worker",)
    assert detect(LOCAL).nodes == ("kaic-dra-0", "kaic-dra-1")  # none runs containers: all of them


@pytest.mark.parametrize("checklist", ["1.34", "1.35", "1.37", "1.40"])
def test_dra_v1_missing_fails_from_its_ga_minor(checklist):
    with pytest.raises(
        AssertionError, match=rf"served versions: v1beta1\): DRA is GA .* checklist {checklist} requires"
    ):
        require_dra_v1(["v1beta1"], checklist)
    require_dra_v1(["v1", "v1beta2"], checklist)  # served: nothing to say


def test_dra_v1_missing_before_ga_is_unknown_not_failed():
    with pytest.raises(
        Unknown, match=r"served versions: none\); on 1.33 DRA is beta and off by default"
    ) as raised:
        require_dra_v1([], "1.33")
    assert not isinstance(raised.value, AssertionError)
    require_dra_v1(["v1"], "1.33")


def test_cordoned_accelerator_nodes_are_named_cordoned_not_missing():
    cordoned = {
        **LOCAL,
        "nodes": {
            **LOCAL["nodes"],
            "withDraDevicesOnly": [{**node(n), "unschedulable": True} for n in ("kaic-dra-0", "kaic-dra-1")],
            "withExtendedResources": [
                {**node("kaic-device-plugin-0", {"example.com/gpu": "8"}), "unschedulable": True}
            ],
        },
    }
    with pytest.raises(Unknown) as found:
        detect(cordoned, "simulated")
    assert (
        "on a Ready, schedulable node (pool nodes: kaic-dra-0 cordoned, kaic-dra-1 cordoned)"
        in found.value.reason
    )
    assert (
        "no Ready, schedulable node has allocatable example.com/gpu (kaic-device-plugin-0 cordoned)"
        in found.value.reason
    )


def test_untolerated_taints_are_named_and_the_runs_tolerations_reach_the_pods():
    dedicated = {"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}
    tainted = {
        **LOCAL,
        "nodes": {
            **LOCAL["nodes"],
            "withDraDevicesOnly": [
                {
                    **node("kaic-dra-0"),
                    "taints": [dedicated, {"key": "example.com/gpu", "effect": "NoSchedule"}],
                },
                node("kaic-dra-1"),
            ],
        },
    }
    chosen = detect(tainted)
    assert chosen.nodes == ("kaic-dra-0", "kaic-dra-1")  # the scheduler decides; the evidence names the taint
    assert chosen.found["untoleratedTaints"] == {"kaic-dra-0": ["dedicated=team-a:NoSchedule"]}
    assert chosen.tolerations() == PROFILES["simulated"].tolerations()
    allowed = {"key": "dedicated", "operator": "Equal", "value": "team-a", "effect": "NoSchedule"}
    chosen = detect(tainted, tolerations=(allowed,))
    assert "untoleratedTaints" not in chosen.found
    assert chosen.tolerations() == [*PROFILES["simulated"].tolerations(), allowed]
