"""The simulated GPU topology and the scenarios, checked without a cluster."""

from __future__ import annotations

from kaic.localcluster import topology
from kaic.localcluster.scenarios import SCENARIOS, flag_value


def test_no_gpu_is_exposed_both_ways() -> None:
    nodes = topology.nodes(topology.DEFAULT_POOLS)
    slices = topology.driver_objects(topology.DEFAULT_POOLS, with_slices=True)[1:]
    plugin_nodes = {
        n["metadata"]["name"] for n in nodes if topology.EXTENDED_RESOURCE in n["status"]["capacity"]
    }
    slice_nodes = {s["spec"]["nodeName"] for s in slices}
    assert plugin_nodes and slice_nodes
    assert not plugin_nodes & slice_nodes
    [device_class] = topology.driver_objects(topology.DEFAULT_POOLS, with_slices=False)
    assert "extendedResourceName" not in device_class["spec"]


def test_slices_follow_the_simulated_profile() -> None:
    [first, *_] = topology.driver_objects(topology.DEFAULT_POOLS, with_slices=True)[1:]
    devices = first["spec"]["devices"]
    assert [d["name"] for d in devices] == [f"gpu-{i}" for i in range(8)]
    assert set(devices[0]["attributes"]) == {"index", "uuid", "model", "driverVersion"}
    assert devices[0]["capacity"] == {"memory": {"value": "80Gi"}}
    uuids = {d["attributes"]["uuid"]["string"] for d in devices}
    assert len(uuids) == 8 and uuids == {topology.gpu_uuid(first["spec"]["nodeName"], i) for i in range(8)}


def test_nodes_are_kwok_managed_with_distinct_pod_ranges() -> None:
    nodes = topology.nodes(topology.DEFAULT_POOLS)
    assert all(n["metadata"]["annotations"] == {topology.KWOK_ANNOTATION: "fake"} for n in nodes)
    assert all(n["metadata"]["labels"]["type"] == "kwok" for n in nodes)
    assert len({n["spec"]["podCIDR"] for n in nodes}) == len(nodes)


def test_scenarios_change_only_their_own_facts() -> None:
    conformant = SCENARIOS["conformant"]
    assert flag_value(conformant.gates) == "GenericWorkload=true"
    assert flag_value(conformant.runtime_config) == "scheduling.k8s.io/v1beta1=true"
    assert SCENARIOS["no-dra"].runtime_config["resource.k8s.io/v1"] is False
    assert SCENARIOS["no-devices"].driver_installed is False
    assert SCENARIOS["no-gang"].gates == {"GenericWorkload": False}
    broken = SCENARIOS["broken-gang"]
    assert broken.gates == conformant.gates and broken.gates_for_scheduler() == {"GenericWorkload": False}
    assert all(pool.gpus_per_node == 0 for pool in SCENARIOS["no-gpu-nodes"].pools)


def test_only_the_gateway_scenarios_and_the_reference_run_traefik_and_they_need_the_real_node() -> None:
    from kaic.localcluster import gateway
    from kaic.localcluster.launcher import components

    with_gateway = {name for name, scenario in SCENARIOS.items() if gateway.NAME in components(scenario)}
    assert with_gateway == {"reference", "gateway", "broken-gateway"}
    assert all(
        SCENARIOS[name].real_node and SCENARIOS[name].gateway in gateway.MODES for name in with_gateway
    )
