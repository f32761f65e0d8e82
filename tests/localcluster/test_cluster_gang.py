"""Native gang scheduling (scheduling.k8s.io/v1beta1 PodGroup) is served and all-or-nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

pytestmark = pytest.mark.cluster

# Long enough for the scheduler to have tried (and, in a broken cluster, bound) the first members.
QUIET_SECONDS = 8


def test_gang_binds_only_when_complete(
    api: client.ApiClient, namespace: str, gang: Any, wait_until: Any
) -> None:
    trio = gang(api, namespace, "trio", min_count=3)
    trio.add_member(0)
    trio.add_member(1)
    time.sleep(QUIET_SECONDS)
    assert trio.bound() == [], "a gang of 3 bound partially with 2 members"

    trio.add_member(2)
    wait_until(lambda: len(trio.bound()) == 3, 60, "the complete gang to bind")
