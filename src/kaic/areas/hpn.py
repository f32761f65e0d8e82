"""High-performance networking: which secondary-network stack to judge, which devices a claim must land on,
and what a pod saw of its interfaces.

Three stacks are recognised, in this order: a DRA network driver (DraNet `dra.net`, or any driver whose
devices publish network attributes such as `rdma` or `ifName`), Multus NetworkAttachmentDefinitions, and
device-plugin `rdma/*` resources. Only the first two give a pod an extra interface kaic can observe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KNOWN_DRIVERS = ("dra.net",)
# Attribute names (without domain) that only a network device publishes.
NETWORK_ATTRIBUTES = frozenset({"rdma", "ifName", "interfaceName", "macAddress", "ipv4"})
MULTUS_GROUP = "k8s.cni.cncf.io"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
# A selector no device of any driver satisfies: the negative case's claim must stay unallocated.
UNMATCHED_SELECTOR = 'device.driver == "unmatched.kaic.dev"'
BEGIN, END = "KAIC-NET-BEGIN", "KAIC-NET-END"
PORT = 5201
PAYLOAD_BYTES = 1 << 20
# Prints the pod's IPv4 interfaces and receive counters between markers; as a server it then takes one
# connection and prints them again, so the receive counter of the secondary interface shows the traffic.
SCRIPT = f"""report() {{
  echo {BEGIN}
  ip -o -4 addr show
  for d in /sys/class/net/*; do echo "rx ${{d##*/}} $(cat $d/statistics/rx_bytes)"; done
  echo {END}
}}
report
if [ -n "$SEND_TO" ]; then head -c {PAYLOAD_BYTES} /dev/zero | nc -w 10 "$SEND_TO" {PORT}; exit $?; fi
if [ -n "$SERVE" ]; then nc -l -p {PORT} > /dev/null; report; fi
"""
_IP_LINE = re.compile(r"^\d+:\s+(\S+)\s+inet\s+([0-9.]+)/\d+")


@dataclass(frozen=True)
class Stack:
    """The secondary-network stack to judge: a DRA driver (with the class and attribute its claims use), a
    NetworkAttachmentDefinition ('namespace/name'), or only rdma/* resources."""

    kind: str  # dra | multus | rdma
    driver: str = ""
    device_class: str = ""
    attribute: str = ""  # qualified boolean attribute, e.g. dra.net/rdma
    attachment: str = ""

    def selector(self) -> str:
        """CEL of the positive claim: the device publishes the attribute and it is true."""
        domain, name = split_attribute(self.attribute, self.driver)
        return f'"{name}" in device.attributes["{domain}"] && device.attributes["{domain}"].{name} == true'


def split_attribute(qualified: str, driver: str) -> tuple[str, str]:
    """(domain, name) of an attribute key; an unqualified key belongs to the driver's own domain."""
    domain, sep, name = qualified.rpartition("/")
    return (domain, name) if sep else (driver, qualified)


def network_drivers(slices: Mapping[str, Any]) -> list[str]:
    """Drivers of the ResourceSlices facts that publish network devices, known ones first (a driver counts by
    the devices discovery counted: complete pools at their newest generation)."""
    found = [d for d in KNOWN_DRIVERS if (slices.get(d) or {}).get("devices")]
    for driver, info in sorted(slices.items()):
        names = {split_attribute(a, driver)[1] for a in info.get("attributes") or []}
        if driver not in found and names & NETWORK_ATTRIBUTES:
            found.append(driver)
    return found


def find_attribute(attributes: Iterable[str], driver: str, wanted: str) -> str | None:
    """The published attribute key whose name (or qualified name) is `wanted`, e.g. rdma -> dra.net/rdma."""
    for key in sorted(attributes):
        domain, name = split_attribute(key, driver)
        if wanted in (key, name, f"{domain}/{name}"):
            return f"{domain}/{name}"
    return None


def classes_for(device_classes: Iterable[Mapping[str, Any]], driver: str) -> list[str]:
    """DeviceClasses whose CEL selectors name the driver (quoted, as in device.driver == "dra.net")."""
    quoted = (f'"{driver}"', f"'{driver}'")
    return sorted(
        dc["name"] for dc in device_classes if any(q in s for s in dc.get("selectors") or [] for q in quoted)
    )


def matches(device: Mapping[str, Any], attribute: str, driver: str) -> bool:
    """Whether a ResourceSlice device satisfies the positive claim: the boolean attribute is published as true
    (under its qualified key, or unqualified when the domain is the driver's)."""
    domain, name = split_attribute(attribute, driver)
    attrs = device.get("attributes") or {}
    keys = [f"{domain}/{name}"] + ([name] if domain == driver else [])
    return any((attrs.get(k) or {}).get("bool") is True for k in keys)


@dataclass(frozen=True)
class View:
    """What a pod reported: IPv4 addresses per interface and receive counters."""

    addresses: dict[str, list[str]]
    rx_bytes: dict[str, int]

    def secondary(self, pod_ip: str) -> dict[str, list[str]]:
        """Interfaces with an IPv4 address other than loopback and the one holding the pod IP."""
        return {i: a for i, a in self.addresses.items() if i != "lo" and pod_ip not in a}


def parse_views(log: str) -> list[View]:
    """Every marker-delimited report in a pod's log, in order."""
    views = []
    for block in log.split(BEGIN)[1:]:
        body = block.split(END, 1)[0]
        addresses: dict[str, list[str]] = {}
        rx: dict[str, int] = {}
        for line in body.strip().splitlines():
            if m := _IP_LINE.match(line.strip()):
                addresses.setdefault(m[1], []).append(m[2])
            elif line.startswith("rx "):
                parts = line.split()
                if len(parts) == 3 and parts[2].isdigit():
                    rx[parts[1]] = int(parts[2])
        views.append(View(addresses, rx))
    return views


def traffic_problems(before: View, after: View, interface: str) -> list[str]:
    """The server's secondary interface must have received at least the payload the client sent."""
    if interface not in before.rx_bytes or interface not in after.rx_bytes:
        return [f"no receive counter for {interface}"]
    got = after.rx_bytes[interface] - before.rx_bytes[interface]
    if got < PAYLOAD_BYTES:
        return [f"{interface} received {got} bytes, less than the {PAYLOAD_BYTES} the other node sent"]
    return []
