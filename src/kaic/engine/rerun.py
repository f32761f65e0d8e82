"""`kaic run --rerun-failed DIR`: run again only the probes of an earlier run that did not pass, and merge.

The rerun judges exactly what its source judged: the same profile (by sha256), checklist, mode, focus, skip,
probe settings and kaic version, all read from the source's report.json; a flag that asks for another is bad
input. It plans the source's requirements, runs the probes whose source outcome was failed, error or unknown
(or that have none: an interrupted source), and carries the passed and not-applicable results over as they
were, each marked with the run that produced it (`carriedFrom`). The new report names its source and the
probes it re-ran (`run.rerunOf`); finalize judges the merged results like any run's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaic import __version__
from kaic.engine.plan import Plan, RunOptions
from kaic.profile import Profile, choose_version, load_profile
from kaic.results import report as results
from kaic.results.outcomes import ExitCode, Outcome
from kaic.results.report import ProbeResult, Report
from kaic.results.run_dir import REPORT_FILE
from kaic.settings import Settings

FLAG = "--rerun-failed"
KEPT = (Outcome.PASSED, Outcome.NOT_APPLICABLE)  # carried over; every other outcome, or none, runs again


class RerunError(Exception):
    """A source run that cannot be re-run as asked (usage: exit 2); the message names the flag at fault."""


@dataclass(frozen=True)
class Rerun:
    """The source run of a rerun: its report and the sha256 of its report.json's bytes."""

    path: Path  # the folder (or report.json) given to --rerun-failed
    source: Report
    digest: str

    @property
    def run_id(self) -> str:
        return str(self.source.run["id"])

    @classmethod
    def load(cls, path: Path) -> Rerun:
        """The source run in `path`, refused when it cannot be re-run: unreadable or not a kaic report,
        changed since it was signed, a quick run (no verdict to merge), made by another kaic, or written
        before kaic recorded the settings a rerun needs."""
        file = path / REPORT_FILE if path.is_dir() else path
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise RerunError(
                f"{FLAG} {file}: cannot read: {exc.strerror or exc}; give a kaic result folder"
            ) from None
        try:
            source = results.parse(data, file)
        except results.ReportError as exc:
            raise RerunError(f"{FLAG} {exc}") from None
        digest = hashlib.sha256(data).hexdigest()
        _unchanged_since_signed(file, digest)
        run_id, mode = source.run["id"], source.run["mode"]
        if mode == "quick":
            raise RerunError(
                f"{FLAG} {file}: run {run_id} ran in quick mode, which judges nothing to re-run; "
                "run non-disruptive or certified"
            )
        made_by = source.kaic.get("kaic")
        if made_by != __version__:
            raise RerunError(
                f"{FLAG} {file}: run {run_id} was made by kaic {made_by}, this is kaic {__version__}; "
                "a merge would mix two versions' probes: run the profile again in full"
            )
        if "settings" not in source.run:
            raise RerunError(
                f"{FLAG} {file}: run {run_id} does not record its probe settings (kaic recorded them later); "
                "run the profile again in full"
            )
        return cls(path, source, digest)

    def options(self, given: RunOptions, explicit: Collection[str]) -> RunOptions:
        """The source's options, with the rest of `given` (cluster access, output folder, timeouts, parallel).

        `explicit` names the RunOptions fields the user set (flag, environment, config file): one that asks
        for another profile, mode, checklist, focus or skip than the source's is a RerunError. A probe setting
        given with a value other than both its default and the source's is one too; --cleanup-timeout and
        --probe-dir (where the same modules lie now) are the rerun's own.
        """
        run = self.source.run
        profile = self._profile(given.profile if "profile" in explicit else None)
        chosen = str(self.source.checklist["chosen"])
        for flag, asked, recorded in (
            ("--mode", given.mode if "mode" in explicit else None, run["mode"]),
            ("--kubernetes-version", _minor(profile, given.kubernetes_version), chosen),
            ("--focus", sorted(given.focus) or None, sorted(run.get("focus") or [])),
            ("--skip", sorted(given.skip) or None, sorted(run.get("skip") or [])),
        ):
            if asked is not None and asked != recorded:
                raise RerunError(
                    f"{flag} {_said(asked)}: run {self.run_id} used {_said(recorded)}, and {FLAG} judges "
                    f"what its source judged; drop {flag}"
                )
        settings = self._settings(given.settings)
        probe_dirs = given.probe_dirs or tuple(Path(d) for d in run.get("probeDirs") or ())
        return dataclasses.replace(
            given,
            profile=str(profile.source),
            mode=run["mode"],
            focus=tuple(run.get("focus") or ()),
            skip=tuple(run.get("skip") or ()),
            kubernetes_version=chosen,
            probe_dirs=probe_dirs,
            settings=settings,
        )

    def _profile(self, asked: str | None) -> Profile:
        """The profile the source used: `asked`, else its recorded file, else its built-in of that id; its
        sha256 must be the recorded one."""
        recorded = self.source.profile
        path = recorded.get("path") or ""
        profile = load_profile(asked or (path if path and Path(path).is_file() else recorded["id"]))
        if profile.sha256 != recorded.get("sha256"):
            where = "--profile" if asked else f"{FLAG} {self.path}"
            used = f"{path or recorded['id']}, sha256 {recorded.get('sha256') or 'unrecorded'}"
            raise RerunError(
                f"{where}: profile {profile.source} (sha256 {profile.sha256}) is not the one run "
                f"{self.run_id} used ({used}); a rerun judges with the same profile: give --profile with "
                "that file"
            )
        return profile

    def _settings(self, given: Settings) -> Settings:
        """The source's probe settings; a setting given with another value is a RerunError."""
        recorded = Settings.from_json(self.source.run["settings"])
        default, asked, kept = _flat(Settings()), _flat(given), _flat(recorded)
        for key in sorted(asked):
            if key != "cleanup_timeout_s" and asked[key] != default.get(key) and asked[key] != kept.get(key):
                raise RerunError(
                    f"{FLAG} {self.path}: probe setting {key} is {asked[key]!r} here but {kept.get(key)!r} "
                    f"in run {self.run_id} (its run.settings); a rerun judges with its source's settings: "
                    "drop that flag"
                )
        return dataclasses.replace(recorded, cleanup_timeout_s=given.cleanup_timeout_s)

    def split(self, plan: Plan) -> tuple[Plan, list[ProbeResult]]:
        """The plan cut to the probes to run again, and the source's results carried over for the others."""
        kept = {p.name: p for p in self.source.probes() if p.outcome in KEPT}
        carried = [
            dataclasses.replace(kept[p.name], carried_from=kept[p.name].carried_from or self.run_id)
            for p in plan.probes
            if p.name in kept
        ]
        rerun = [p for p in plan.probes if p.name not in kept]
        return dataclasses.replace(plan, probes=rerun), carried

    def block(self, plan: Plan) -> dict[str, Any]:
        """`run.rerunOf` of the new report, for the plan `split` cut."""
        return {"runId": self.run_id, "reportSha256": self.digest, "probes": [p.name for p in plan.probes]}

    def other_cluster(self, uid: str | None) -> str:
        """Why the rerun's cluster is not its source's ("" when it is, or when either uid is unknown)."""
        before = self.source.cluster.get("uid")
        if uid and before and uid != before:
            return (
                f"{FLAG}: cluster uid {uid} is not the cluster of run {self.run_id} (uid {before}); "
                "results of two clusters are never merged"
            )
        return ""

    def nothing_to_rerun(self) -> tuple[str, ExitCode]:
        """What to say, and the exit code, when every planned probe passed or was not applicable."""
        verdict = self.source.verdict
        code = ExitCode(verdict.get("exitCode", ExitCode.INCOMPLETE))
        stands = f"{verdict.get('result') or 'none recorded'} (exit code {int(code)})"
        message = (
            f"{FLAG} {self.path}: nothing to re-run: every probe of run {self.run_id} passed or was not "
            f"applicable; its verdict stands: {stands}"
        )
        return message, code


def _unchanged_since_signed(file: Path, digest: str) -> None:
    from kaic.certify.verify import signed_digests

    try:
        signed = signed_digests(file.parent)
    except ValueError as exc:
        raise RerunError(f"{FLAG} {file.parent}: the folder is signed, but {exc}") from None
    if signed is not None and signed.get(REPORT_FILE) != digest:
        raise RerunError(
            f"{FLAG} {file}: changed since the run was signed (sha256 {digest}, signed "
            f"{signed.get(REPORT_FILE) or 'nothing'}); give the run as it was signed"
        )


def _minor(profile: Profile, asked: str | None) -> str | None:
    return choose_version(profile, None, asked)[0] if asked else None


def _said(value: Any) -> str:
    return (",".join(value) if isinstance(value, list) else str(value or "")) or "none"


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Settings as dotted keys (gang.scheduler), as report.json's run.settings nests them."""
    flat: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            flat |= _flat(value, f"{prefix}{f.name}.")
        else:
            flat[f"{prefix}{f.name}"] = value
    return flat
