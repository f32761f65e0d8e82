"""ResourceSlice pools as the scheduler sees them: newest generation only, counted once complete."""

from __future__ import annotations

from api_objects import rslice

from kaic.areas import accelerators, hpn
from kaic.kube import resourceslices
from kaic.kube.facts import slice_nodes


def test_a_new_generation_without_devices_leaves_the_driver_without_devices():
    slices = [
        rslice("gpu.example.com", "node-a", 1, 8, "node-a"),
        rslice("gpu.example.com", "node-a", 2, 0, "node-a"),
    ]
    driver = resourceslices.inventory(slices)["gpu.example.com"]
    assert driver["devices"] == 0 and driver["attributes"] == [] and driver["staleSlices"] == 1
    assert driver["pools"] == {
        "node-a": {"generation": 2, "nodes": ["node-a"], "devices": 0, "slices": 1, "staleSlices": 1}
    }
    found = accelerators.inventory({"resourceSlices": {"gpu.example.com": driver}})
    assert found["draDrivers"] == {}
    assert found["draDriversWithoutDevices"] == {
        "gpu.example.com": "1 slice(s) of older pool generations ignored"
    }


def test_older_generations_never_add_devices_whatever_their_order():
    slices = [
        rslice("gpu.example.com", "node-a", 3, 2, "node-a"),
        rslice("gpu.example.com", "node-a", 1, 8, "node-a"),
        rslice("gpu.example.com", "node-a", 2, 4, "node-a"),
    ]
    pool = resourceslices.inventory(slices)["gpu.example.com"]["pools"]["node-a"]
    assert (pool["generation"], pool["devices"], pool["staleSlices"]) == (3, 2, 2)
    assert [rs["metadata"]["name"] for rs in resourceslices.current_slices(slices)] == [
        "node-a-gpu.example.com-node-a-3"
    ]


def test_an_incomplete_newest_generation_is_not_counted_and_says_so():
    slices = [
        rslice("gpu.example.com", "node-a", 1, 8, "node-a", count=1),
        rslice("gpu.example.com", "node-a", 2, 4, "node-a", count=2, name="half"),
    ]
    driver = resourceslices.inventory(slices)["gpu.example.com"]
    assert driver["pools"] == {} and driver["devices"] == 0
    assert driver["incompletePools"] == {
        "node-a": {"generation": 2, "slices": 1, "expectedSlices": 2, "staleSlices": 1}
    }
    assert resourceslices.uncounted(driver) == (
        "pool node-a generation 2 has 1 of 2 slices (incomplete, not counted); "
        "1 slice(s) of older pool generations ignored"
    )
    # Once the second slice of generation 2 arrives, the pool counts with both slices' devices.
    done = resourceslices.inventory(
        [*slices, rslice("gpu.example.com", "node-a", 2, 4, "node-a", count=2, name="rest")]
    )
    assert done["gpu.example.com"]["pools"]["node-a"]["devices"] == 8
    assert done["gpu.example.com"]["incompletePools"] == {}


def test_pools_and_drivers_are_counted_separately():
    slices = [
        rslice("gpu.example.com", "node-a", 5, 8, "node-a"),
        rslice("gpu.example.com", "node-b", 1, 2, "node-b"),
        rslice("gpu.example.com", "node-b", 2, 4, "node-b"),
        # Another driver may reuse a pool name: its generations are its own.
        rslice("dra.net", "node-a", 1, 2, "node-a", attributes={"dra.net/rdma": {"bool": True}}),
        rslice("dra.net", "fabric", 7, 3, count=1),  # network-attached: no node
    ]
    found = resourceslices.inventory(slices)
    gpus, nics = found["gpu.example.com"], found["dra.net"]
    assert gpus["devices"] == 12 and gpus["staleSlices"] == 1
    assert {name: (p["generation"], p["devices"]) for name, p in gpus["pools"].items()} == {
        "node-a": (5, 8),
        "node-b": (2, 4),
    }
    assert nics["devices"] == 5 and nics["pools"]["fabric"]["nodes"] == [] and nics["staleSlices"] == 0
    assert nics["attributes"] == ["dra.net/rdma", "uuid"]
    assert hpn.network_drivers(found) == ["dra.net"]


def test_a_network_driver_without_current_devices_is_no_network_driver():
    slices = [
        rslice("dra.net", "node-a", 1, 2, "node-a", attributes={"dra.net/rdma": {"bool": True}}),
        rslice("dra.net", "node-a", 2, 0, "node-a"),
    ]
    assert hpn.network_drivers(resourceslices.inventory(slices)) == []


def test_slice_nodes_are_the_nodes_of_counted_pools_of_every_driver():
    slices = [
        rslice("gpu.example.com", "node-a", 1, 8, "node-a"),
        rslice("gpu.example.com", "node-b", 1, 8, "node-b", count=2),  # incomplete: not counted
        rslice("dra.net", "node-a", 1, 2, "node-a"),
        rslice("dra.net", "node-c", 1, 2, "node-c"),
        rslice("dra.net", "fabric", 1, 3),  # network-attached: no node
    ]
    assert slice_nodes({"resourceSlices": resourceslices.inventory(slices)}) == {"node-a", "node-c"}
    assert slice_nodes({"resourceSlices": None}) == set()  # the section could not be read


def test_no_slices_no_drivers():
    assert resourceslices.inventory([]) == {}
    assert resourceslices.current_slices([]) == []
