"""`kaic cluster up | down | status | kubeconfig`: the local reference AI cluster from the command line."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kaic.cli.errors import InputError, OperationError
from kaic.cli.params import LazyChoice
from kaic.localcluster import DEFAULT_SCENARIO, DEFAULT_STATE_DIR, ENV_STATE_DIR

if TYPE_CHECKING:
    from kaic.localcluster.launcher import LocalCluster

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    envvar=ENV_STATE_DIR,
    show_default=True,
    show_envvar=True,
    help="Directory holding the cluster's PKI, data, logs and kubeconfig.",
)


def _scenario_names() -> list[str]:
    from kaic.localcluster.scenarios import SCENARIOS

    return sorted(SCENARIOS)


@click.group()
def cluster() -> None:
    """A local Kubernetes cluster with simulated GPU nodes, built from upstream components."""


@cluster.command()
@state_dir_option
@click.option(
    "--scenario",
    type=LazyChoice(_scenario_names),
    default=DEFAULT_SCENARIO,
    show_default=True,
    help="Cluster shape: the conformant reference or a deliberately broken variant.",
)
@click.option("--timeout", type=float, default=90.0, show_default=True, help="Seconds to wait per component.")
@click.option(
    "--real-node",
    is_flag=True,
    help="Also start one real worker node (kubelet, containerd, runc; needs root) that runs containers "
    "(scenarios that need it, real-node and the operator scenarios, start it anyway).",
)
def up(state_dir: Path, scenario: str, timeout: float, real_node: bool) -> None:
    """Start etcd, the control plane, kwok and the simulated GPU driver on 127.0.0.1."""
    from kaic.localcluster import node
    from kaic.localcluster.launcher import ClusterError, LocalCluster, find_binaries
    from kaic.localcluster.scenarios import SCENARIOS

    local = LocalCluster(state_dir)
    started = time.monotonic()
    shape = SCENARIOS[scenario]
    shape = dataclasses.replace(shape, real_node=shape.real_node or real_node)
    try:
        state = local.up(shape, find_binaries(), timeout=timeout)
    except ClusterError as error:
        raise OperationError(str(error)) from error
    shown = f"{scenario}, real node {node.NODE_NAME}" if shape.real_node else scenario
    click.echo(
        f"cluster up ({shown}) in {time.monotonic() - started:.1f}s; logs in {local.state_dir / 'logs'}"
    )
    if isinstance(guard := state["route_guard"], str):
        click.echo(f"route guard: {guard} (simulated addresses are refused by the egress proxy alone)")
    click.echo(f"export KUBECONFIG={local.kubeconfig}")
    click.echo(f"export KAIC_CONFIG={local.config}  # the local images: kaic run needs no --image")


@cluster.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop every process `up` started and remove the state directory."""
    from kaic.localcluster.launcher import ClusterError, LocalCluster

    local = LocalCluster(state_dir)
    try:
        busy = local.down()
    except ClusterError as error:
        raise OperationError(str(error)) from error
    if busy:
        raise OperationError(f"stopped, but ports still in use: {busy}")
    click.echo(f"cluster down; removed {local.state_dir}")


@cluster.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Show each component's pid and memory, the real node's pods and shims with theirs, the scenario and the
    API server address."""
    from kaic.localcluster import node
    from kaic.localcluster.launcher import LocalCluster, components
    from kaic.localcluster.scenarios import SCENARIOS

    local = LocalCluster(state_dir)
    state = local.state()
    if not state:
        click.echo(f"no cluster in {local.state_dir}")
        sys.exit(1)
    click.echo(f"scenario: {state['scenario']}  server: {state['server']}  ready: {state['ready']}")
    expected = components(SCENARIOS[state["scenario"]])
    expected += node.components(state["real_node"]) if state.get("real_node") else ()
    rows = []
    for name in expected:
        process = local.process(name)
        pid = process.pid()
        rows.append((name, f"pid {pid}" if pid else "not running", process.rss_bytes()))
    if state.get("real_node"):
        rows += _real_node_rows(local)
    width = max(len(name) for name, _, _ in rows)
    for name, shown, rss in rows:
        click.echo(f"  {name:<{width}}  {shown:<10} rss {rss / 2**20:5.0f} MiB")
    click.echo(f"  {'total':<{width + 12}} rss {sum(rss for _, _, rss in rows) / 2**20:5.0f} MiB")
    if any(not local.process(name).alive() for name in expected):
        sys.exit(1)


def _real_node_rows(local: LocalCluster) -> list[tuple[str, str, int]]:
    """One row per pod on the real node (all its processes: containers, pause, a gVisor sandbox) and one for
    the shims that run them; a pod the API cannot name (API down, pod being deleted) shows its UID."""
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    from kaic.localcluster import node

    try:
        names = local.real_node_pods()
    except (ApiException, HTTPError, OSError):
        names = {}
    pods = [(names.get(uid, f"pod {uid}"), "pod", rss) for uid, rss in node.pod_resident_bytes().items()]
    count, rss = local.real_node().shim_resident_bytes()
    return [*sorted(pods), (f"containerd shims on {node.NODE_NAME}", f"{count} procs", rss)]


@cluster.command("load-image")
@state_dir_option
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_image(state_dir: Path, archive: Path) -> None:
    """Import an OCI image archive into the real node's containerd (`make image`'s dist/kaic-runner.tar, for
    `kaic run --in-cluster`)."""
    import subprocess

    from kaic.localcluster.launcher import ClusterError, LocalCluster

    local = LocalCluster(state_dir)
    state = local.state()
    if not state.get("real_node"):
        raise InputError(
            f"--state-dir {local.state_dir}: no cluster with a real node there; "
            "`kaic cluster up --real-node` first"
        )
    try:
        local.load_image(archive)
    except (ClusterError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise OperationError(f"{archive}: import failed: {' '.join(str(detail).split())}") from error
    click.echo(f"imported {archive} into {local.real_node().containerd_socket}")


@cluster.command()
@state_dir_option
def kubeconfig(state_dir: Path) -> None:
    """Print the admin kubeconfig's path: `export KUBECONFIG=$(kaic cluster kubeconfig)`."""
    from kaic.localcluster.launcher import LocalCluster

    local = LocalCluster(state_dir)
    if not local.kubeconfig.exists():
        raise InputError(f"--state-dir {local.state_dir}: no cluster there; run `kaic cluster up`")
    click.echo(str(local.kubeconfig))


if __name__ == "__main__":
    cluster()
