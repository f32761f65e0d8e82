"""The pure part of high_performance_networking: which driver and attribute, the claim's CEL, device matching,
a pod's interface report and the cross-node traffic verdict."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kaic.areas import hpn

DRANET = {
    "dra.net": {
        "attributes": ["dra.net/ifName", "dra.net/numaNode", "dra.net/rdma"],
        "devices": 2,
        "pools": {},
    }
}
GPUS = {
    "gpu.example.com": {"attributes": ["driverVersion", "index", "model", "uuid"], "devices": 8, "pools": {}}
}


def test_dranet_is_a_network_driver_and_gpus_are_not():
    assert hpn.network_drivers({**GPUS, **DRANET}) == ["dra.net"]
    assert hpn.network_drivers(GPUS) == []


def test_an_unknown_driver_counts_by_its_network_attributes():
    other = {"sriov.example.com": {"attributes": ["interfaceName", "vendor"]}}
    assert hpn.network_drivers({**other, **DRANET}) == ["dra.net", "sriov.example.com"]


@pytest.mark.parametrize(
    ("attributes", "wanted", "found"),
    [
        (["dra.net/ifName", "dra.net/rdma"], "rdma", "dra.net/rdma"),
        (["dra.net/rdma"], "dra.net/rdma", "dra.net/rdma"),
        (["rdma"], "rdma", "dra.net/rdma"),  # unqualified: the driver's own domain
        (["dra.net/ifName"], "rdma", None),
        (["dra.net/sriov"], "dra.net/rdma", None),
    ],
)
def test_the_selected_attribute_is_qualified_with_its_domain(attributes, wanted, found):
    assert hpn.find_attribute(attributes, "dra.net", wanted) == found


def test_the_claim_selects_the_attribute_true_and_guards_its_presence():
    stack = hpn.Stack("dra", driver="dra.net", device_class="dranet", attribute="dra.net/rdma")
    assert (
        stack.selector()
        == '"rdma" in device.attributes["dra.net"] && device.attributes["dra.net"].rdma == true'
    )


def test_classes_are_those_whose_selector_names_the_driver():
    classes = [
        {"name": "gpu", "selectors": ["device.driver == 'gpu.example.com'"]},
        {
            "name": "rdma-nics",
            "selectors": ['device.driver == "dra.net" && device.attributes["dra.net"].rdma'],
        },
        {"name": "all-nics", "selectors": ["device.driver == 'dra.net'"]},
        {"name": "drannet", "selectors": ["device.driver == 'dra.network'"]},
    ]
    assert hpn.classes_for(classes, "dra.net") == ["all-nics", "rdma-nics"]


@pytest.mark.parametrize(
    ("attributes", "matched"),
    [
        ({"dra.net/rdma": {"bool": True}}, True),
        ({"rdma": {"bool": True}}, True),
        ({"dra.net/rdma": {"bool": False}}, False),
        ({"dra.net/rdma": {"string": "true"}}, False),
        ({"dra.net/ifName": {"string": "eth1"}}, False),
    ],
)
def test_a_device_matches_only_with_the_attribute_true(attributes, matched):
    assert hpn.matches({"name": "eth1", "attributes": attributes}, "dra.net/rdma", "dra.net") is matched


def test_an_unqualified_key_of_another_domain_does_not_match():
    assert not hpn.matches({"attributes": {"rdma": {"bool": True}}}, "example.com/rdma", "dra.net")


LOG = f"""{hpn.BEGIN}
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 100.64.128.7/24 brd 100.64.128.255 scope global eth0\\       valid_lft forever
3: net1    inet 100.70.0.4/24 brd 100.70.0.255 scope global net1\\       valid_lft forever
rx eth0 1200
rx lo 0
rx net1 500
{hpn.END}
{hpn.BEGIN}
rx eth0 1300
rx net1 {500 + hpn.PAYLOAD_BYTES + 4096}
{hpn.END}
"""


def test_reports_give_addresses_and_counters():
    first, last = hpn.parse_views(LOG)
    assert first.addresses == {"lo": ["127.0.0.1"], "eth0": ["100.64.128.7"], "net1": ["100.70.0.4"]}
    assert first.rx_bytes == {"eth0": 1200, "lo": 0, "net1": 500}
    assert first.secondary("100.64.128.7") == {"net1": ["100.70.0.4"]}
    assert hpn.traffic_problems(first, last, "net1") == []


def test_a_pod_with_only_its_pod_network_has_no_secondary_interface():
    (view,) = hpn.parse_views(LOG.split(hpn.END)[0].replace("3: net1", "x") + hpn.END)
    assert view.secondary("100.64.128.7") == {}


def test_traffic_that_missed_the_secondary_interface_fails():
    first, last = hpn.parse_views(LOG.replace(f"rx net1 {500 + hpn.PAYLOAD_BYTES + 4096}", "rx net1 900"))
    assert hpn.traffic_problems(first, last, "net1") == [
        f"net1 received 400 bytes, less than the {hpn.PAYLOAD_BYTES} the other node sent"
    ]
    assert hpn.traffic_problems(first, last, "net9") == ["no receive counter for net9"]


def test_no_report_reads_as_nothing():
    assert hpn.parse_views("sh: ip: not found\n") == []


def test_the_script_serves_and_sends_on_the_probe_port():
    assert f"nc -l -p {hpn.PORT}" in hpn.SCRIPT and f'"$SEND_TO" {hpn.PORT}' in hpn.SCRIPT


@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 or busybox ip")
def test_the_script_reports_this_host_without_serving_or_sending():
    out = subprocess.run(
        ["sh", "-c", hpn.SCRIPT], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    (view,) = hpn.parse_views(out)
    assert view.addresses["lo"] == ["127.0.0.1"] and "lo" in view.rx_bytes
