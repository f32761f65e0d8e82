"""`kaic run --in-cluster` and the commands that follow such a run: `status`, `logs`, `retrieve`, `delete`.

Exit codes: status, logs and delete 0 when they did their job; retrieve the run's own exit code (as `kaic
run` would have exited), so a pipeline that ends with it gates the same way; an unknown run id, a run of
another cluster or results asked for too early 2; a cluster that cannot be reached or results that fail their
digests 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from kaic.cli.errors import InputError, OperationError, named_input_error
from kaic.cli.params import duration_option
from kaic.cli.run import cluster_options
from kaic.results.outcomes import ExitCode
from kaic.settings import CLEANUP_TIMEOUT_S, REQUEST_TIMEOUT_S

RUN_ID = click.argument("run_id", metavar="RUN_ID")
MIN_TTL_S, MAX_TTL_S = 60, 2**31 - 1


def _connect(kwargs: dict[str, Any]) -> Any:
    from kaic.kube import client as kube

    try:
        return kube.connect(
            kwargs["kubeconfig"], kwargs["context"], kwargs["request_timeout"] or REQUEST_TIMEOUT_S
        )
    except kube.KubeconfigError as exc:
        raise named_input_error(exc) from None


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    """A run id this cluster lacks, or results asked for too early, is bad input (2); an API that fails or
    refuses, a runner that cannot start, results that ended, expired or fail their digests, an operation
    error (3)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from kaic.incluster.control import RunEnded, RunNotFound, RunNotReady, RunNotStarted
    from kaic.incluster.store import ResultsError
    from kaic.kube.client import describe_error

    try:
        yield
    except (RunNotFound, RunNotReady) as exc:
        raise InputError(str(exc)) from None
    except (RunNotStarted, RunEnded, ResultsError, TimeoutError) as exc:
        raise OperationError(f"{what}: {exc}") from None
    except (ApiException, HTTPError, OSError) as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        raise OperationError(f"{what}: {describe_error(exc)} {notes}".strip()) from None


# ---- kaic run --in-cluster ---------------------------------------------------------------------------------


def refusals(kwargs: dict[str, Any]) -> None:
    """Flags an in-cluster run cannot honour, refused before anything is created; runner flags without
    --in-cluster are refused too when typed (a config file may set them for every run)."""
    from kaic.profile import builtin_names

    typed = _typed()
    if not kwargs["in_cluster"]:
        for flag in (
            "detach",
            "runner_image",
            "runner_node_selector",
            "runner_toleration",
            "runner_host_network",
        ):
            if flag in typed:
                raise InputError(f"--{flag.replace('_', '-')}: only with --in-cluster")
        return
    if kwargs.get("probe_dirs"):
        raise InputError(
            "--probe-dir: an in-cluster run has kaic's own probes only; run in-house probes locally"
        )
    if kwargs.get("gaie_conformance_dir"):
        raise InputError(
            "--gaie-conformance-dir: the runner image has no Go toolchain; run this probe locally"
        )
    if kwargs.get("rerun_failed"):
        raise InputError(
            "--rerun-failed with --in-cluster: the source folder is on this machine; re-run it locally"
        )
    if kwargs["profile"] not in builtin_names():
        raise InputError(
            f"--profile {kwargs['profile']}: an in-cluster run uses the runner image's built-in profiles "
            f"({', '.join(builtin_names())}); run a profile file locally"
        )
    if not MIN_TTL_S <= kwargs["results_ttl"] <= MAX_TTL_S:
        raise InputError(
            f"--results-ttl {kwargs['results_ttl']:g}s: give between 1m and {MAX_TTL_S}s (a Job's TTL)"
        )
    if kwargs["detach"]:
        for flag in ("sign_key", "output_dir"):
            if flag in typed:
                raise InputError(
                    f"--{flag.replace('_', '-')} with --detach: nothing is on this machine yet; "
                    "`kaic retrieve RUN_ID -d DIR`, then `kaic sign DIR`"
                )
        kwargs["sign_key"] = kwargs["output_dir"] = None  # defaults from the environment or a config file


def _typed() -> set[str]:
    """The flags given on the command line, not by default, environment or config file."""
    ctx = click.get_current_context()
    return {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }


def run_in_cluster(opts: Any, kwargs: dict[str, Any], key: Any) -> None:
    """Launch the runner; unless detached, follow its log, retrieve its results into the output folder
    (claimed first), sign them here, remove the run's objects and exit with the run's exit code."""
    from kaic.areas.images import resolve
    from kaic.engine.plan import PlanError, plan_for_server, plan_only, server_minor
    from kaic.engine.rbac import role_object
    from kaic.engine.run import (
        RunError,
        default_output_dir,
        new_run_id,
        prepare_output_dir,
        release_output_dir,
    )
    from kaic.incluster import control, objects, runner
    from kaic.profile import ProfileError

    cluster = _connect(kwargs)
    opts.run_id = run_id = new_run_id()
    click.echo(f"kaic: {cluster.connecting()}", err=True)
    with _api_errors(f"cluster {cluster.server()}"):
        version = cluster.get("/version")
    try:  # the plan the runner will make once it has asked the server its version, as a local run does
        plan, _ = plan_for_server(plan_only(opts)[0], opts, server_minor(version))
    except (PlanError, ProfileError) as exc:
        raise named_input_error(exc) from None
    server = urlsplit(cluster.server())
    pod = objects.Runner(
        image=kwargs["runner_image"] or resolve(opts.settings.images, opts.settings.image_mirror)["runner"],
        node_selector=kwargs["runner_node_selector"],
        tolerations=tuple(kwargs["runner_toleration"]),
        api_server=(server.hostname or "", str(server.port or 443))
        if kwargs["runner_host_network"]
        else None,
        results_ttl_s=int(kwargs["results_ttl"]),
        grace_s=int(opts.settings.cleanup_timeout_s) + 60,
    )
    out_dir, made = None, False
    if not kwargs["detach"]:  # a folder that cannot take the results is found now, not after the run
        out_dir = kwargs.get("output_dir") or default_output_dir(run_id)
        try:
            made = prepare_output_dir(out_dir)
        except RunError as exc:
            raise named_input_error(exc) from None
    try:
        with _launch_errors(run_id):
            control.launch(cluster, run_id, role_object(plan), runner.args(opts), pod)
    except BaseException:
        if out_dir is not None:
            release_output_dir(out_dir, made)
        raise
    click.echo(
        f"kaic: run {run_id} launched in namespace {objects.namespace(run_id)} ({pod.image}; "
        f"{plan.profile.id}, checklist {plan.version}, mode {plan.mode}, {len(plan.probes)} probes)",
        err=True,
    )
    if out_dir is None:
        if kwargs["output"] == "json":
            click.echo(json.dumps({"run": run_id, "namespace": objects.namespace(run_id)}))
        click.echo(
            f"kaic: detached; it goes on in the cluster: `kaic status {run_id}`, `kaic logs {run_id} -f`, "
            f"`kaic retrieve {run_id}`, then `kaic delete {run_id}`",
            err=True,
        )
        return
    try:
        with _api_errors(f"following run {run_id}"):
            for line in control.log_lines(cluster, run_id, follow=True):
                click.echo(line, err=True)
            current = control.wait_ended(cluster, run_id)
        if current.manifest is None:
            raise OperationError(
                f"run {run_id} {current.phase}: {current.detail}; remove it with `kaic delete {run_id}`"
            )
        _unpack(cluster, run_id, out_dir)
    except BaseException as exc:
        release_output_dir(out_dir, made)
        if isinstance(exc, KeyboardInterrupt):
            click.echo(
                f"\nkaic: stopped following; run {run_id} goes on in the cluster: `kaic status {run_id}`, "
                f"`kaic retrieve {run_id}`, `kaic delete {run_id}`",
                err=True,
            )
            sys.exit(ExitCode.INCOMPLETE)
        raise
    try:
        with _api_errors(f"removing run {run_id}"):  # the results are safe here: leave nothing in the cluster
            control.delete(cluster, run_id, kwargs["cleanup_timeout"] or CLEANUP_TIMEOUT_S)
    except OperationError as exc:  # the run's verdict stands; what is left is named
        click.echo(f"kaic: warning: {exc.message}; finish with `kaic delete {run_id}`", err=True)
    from kaic.cli.errors import load_report
    from kaic.cli.run import conclude

    conclude(out_dir, load_report(out_dir), ExitCode(current.manifest["exitCode"]), key, kwargs, None)


@contextmanager
def _launch_errors(run_id: str) -> Iterator[None]:
    """Objects the API refuses as invalid came from the runner flags: bad input, naming them."""
    from kubernetes.client.exceptions import ApiException

    from kaic.kube.client import describe_error

    try:
        with _api_errors("launching the runner"):
            yield
    except OperationError as exc:
        cause = exc.__context__
        if isinstance(cause, ApiException) and cause.status == 422:
            raise InputError(
                "--runner-image, --runner-node-selector or --runner-toleration: the cluster refused the "
                f"runner as invalid ({describe_error(cause)})"
            ) from None
        raise


def _unpack(cluster: Any, run_id: str, folder: Path) -> dict[str, Any]:
    """Fetch the run's results into a claimed folder; returns their manifest."""
    from kaic.incluster import control, store

    with _api_errors(f"retrieving run {run_id}"):
        manifest, blob = control.fetch(cluster, run_id)
    try:
        store.unpack(blob, manifest["files"], folder)
    except OSError as exc:
        raise OperationError(
            f"--output-dir {folder}: cannot write the results there ({exc.strerror or exc})"
        ) from None
    except store.ResultsError as exc:
        raise OperationError(f"retrieving run {run_id}: {exc}") from None
    return manifest


# ---- status, logs, retrieve, delete -----------------------------------------------------------------------


@click.command()
@click.argument("run_id", metavar="[RUN_ID]", required=False)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@cluster_options
def status(run_id: str | None, output: str, **kwargs: Any) -> None:
    """An in-cluster run's phase, probes done of total and outcomes so far; without RUN_ID, every run here."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"cluster {cluster.server()}"):
        if run_id:
            states = [control.state(cluster, run_id)]
        else:
            states = [s for i in control.runs(cluster) if (s := _still_there(cluster, i))]
    if output == "json":
        click.echo(json.dumps([_as_dict(s) for s in states], indent=2))
        return
    if not states:
        click.echo(f"no in-cluster runs on {cluster.server()}")
        return
    for current in states:
        click.echo(_line(current))


def _still_there(cluster: Any, run_id: str) -> Any:
    """A listed run's state, or None when it went (deleted) since it was listed."""
    from kaic.incluster import control

    try:
        return control.state(cluster, run_id)
    except control.RunNotFound:
        return None


def _as_dict(current: Any) -> dict[str, Any]:
    done = current.status
    return {
        "run": current.run_id,
        "phase": current.phase,
        "detail": current.detail,
        "created": current.created,
        "probes": {
            "done": done.get("done", 0),
            "total": done.get("total", 0),
            "outcomes": done.get("outcomes", {}),
        },
        "exitCode": (current.manifest or {}).get("exitCode"),
    }


def _line(current: Any) -> str:
    data = _as_dict(current)
    probes = data["probes"]
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(probes["outcomes"].items()))
    text = f"{current.run_id}  {current.phase:<8}  {probes['done']}/{probes['total']} probes"
    text += f" ({counts})" if counts else ""
    if data["exitCode"] is not None:
        text += f"  exit {data['exitCode']}: `kaic retrieve {current.run_id}`"
    return text + (f"  {current.detail}" if current.detail and current.phase != "finished" else "")


@click.command()
@RUN_ID
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the runner writes, until it ends.")
@cluster_options
def logs(run_id: str, follow: bool, **kwargs: Any) -> None:
    """The runner's log: the same progress lines and summary a local run prints."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"reading run {run_id}'s log"):
        for line in control.log_lines(cluster, run_id, follow):
            click.echo(line)


@click.command()
@RUN_ID
@click.option(
    "--output-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty folder for the results [default: ./kaic-results-<UTC time>-<run id>].",
)
@cluster_options
def retrieve(run_id: str, output_dir: Path | None, **kwargs: Any) -> None:
    """Fetch a finished in-cluster run's results folder, every file checked against the digest the runner
    recorded; exits with the run's own exit code."""
    from kaic.engine.run import RunError, default_output_dir, prepare_output_dir, release_output_dir
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"retrieving run {run_id}"):
        control.fetch(cluster, run_id)  # a run that is unknown or not finished fails before a folder is made
    folder = output_dir or default_output_dir(run_id)
    try:
        made = prepare_output_dir(folder)
    except RunError as exc:
        raise named_input_error(exc) from None
    try:
        manifest = _unpack(cluster, run_id, folder)
    except BaseException:
        release_output_dir(folder, made)
        raise
    from kaic.cli.errors import load_report

    click.echo(f"kaic: run {run_id}: {load_report(folder).verdict.get('summary', '')}", err=True)
    click.echo(f"results: {folder}", err=True)
    sys.exit(int(manifest["exitCode"]))


@click.command()
@RUN_ID
@duration_option(
    "--cleanup-timeout", seconds=CLEANUP_TIMEOUT_S, help="How long to wait for the namespace to go."
)
@cluster_options
def delete(run_id: str, cleanup_timeout: float, **kwargs: Any) -> None:
    """Remove everything an in-cluster run created: its namespace (runner, results), ClusterRole and binding,
    and whatever its probes left if it was cut short."""
    from kaic.incluster import control

    cluster = _connect(kwargs)
    with _api_errors(f"removing run {run_id}"):
        deleted = control.delete(cluster, run_id, cleanup_timeout)
    for item in deleted:
        click.echo(f"deleted {item}")
    click.echo(f"kaic: removed run {run_id}", err=True)
