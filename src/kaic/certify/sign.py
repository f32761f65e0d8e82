"""Signing a run: an in-toto Statement v1 over every artifact's bytes, in a DSSE envelope.

DSSE signs the payload's bytes, so the statement needs no canonical form; artifacts are hashed as they lie on
disk and never re-serialised, so any reader can check them with `sha256sum`. One signature is written three
ways: the envelope (`report.intoto.json`), the same envelope as a key-only Sigstore bundle
(`report.sigstore.json`) and a detached signature over report.json (`report.json.sig`), which is exactly
what `cosign sign-blob` writes, so cosign verifies all of them offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaic.results.atomic import atomic_write_text
from kaic.results.outcomes import TABLE, Outcome, Verdict
from kaic.results.report import Report, ReportError, parse
from kaic.results.run_dir import (
    BUNDLE_FILE,
    E2E_LOG_FILE,
    ENVELOPE_FILE,
    FACTS_FILE,
    JUNIT_FILE,
    KAIC_JUNIT_FILE,
    PRODUCT_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    SIGNATURE_FILE,
    SUMMARY_FILE,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"  # cosign accepts no other payloadType for an attestation
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://kaic.dev/attestation/conformance-report/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# Every artifact a run may hold, in subject order.
ARTIFACTS = (
    REPORT_FILE,
    JUNIT_FILE,
    RESULTS_FILE,
    E2E_LOG_FILE,
    KAIC_JUNIT_FILE,
    SUMMARY_FILE,
    FACTS_FILE,
    PRODUCT_FILE,
)
OUTPUTS = (ENVELOPE_FILE, BUNDLE_FILE, SIGNATURE_FILE)


class SignError(Exception):
    """The folder cannot be signed as it is; the message says why."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is really signed, so the type cannot be swapped."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _kubernetes_version(cluster: dict[str, Any]) -> str:
    """A string, whether the report holds it as such or as the raw /version object."""
    version = cluster.get("serverVersion")
    return _text(version.get("gitVersion") if isinstance(version, dict) else version)


def _testcase(requirement: Any) -> str:
    """The Go test(s) the requirement reports as in junit.xml, as a `go test -run` pattern."""
    roots = dict.fromkeys(p.test.split("/")[0] for p in requirement.probes)
    return "|".join(roots) or requirement.upstream_test


def predicate(report: Report) -> dict[str, Any]:
    """What the signature asserts about the run; strings and lists only, so no float is ever signed."""
    requirements = [
        {
            "id": r.id,
            "level": r.level,
            "status": TABLE[r.outcome or Outcome.UNKNOWN].summary_result,
            "testcase": _testcase(r),
        }
        for r in report.requirements
    ]
    verdict = _text(report.verdict.get("result"))
    version = _text(report.checklist.get("chosen"))
    return {
        "kaic": {"version": _text(report.kaic.get("kaic"))},
        "run": {"id": _text(report.run.get("id")), "mode": _text(report.run.get("mode"))},
        "profile": {
            "id": _text(report.profile.get("id")),
            "version": _text(report.profile.get("version")),
            "digest": {"sha256": _text(report.profile.get("sha256"))},
        },
        "checklist": {
            "name": f"AIConformance-{version}.yaml",
            "version": version,
            "digest": {"sha256": _text(report.checklist.get("sha256"))},
        },
        "cluster": {
            "kubernetesVersion": _kubernetes_version(report.cluster),
            "clusterUID": _text(report.cluster.get("uid")),
            "context": _text(report.cluster.get("context")),
        },
        "requirements": requirements,
        "result": "PASSED" if verdict == Verdict.CONFORMANT else "FAILED",  # a partial run did not pass
        "verdict": verdict,
        "mustsNotRun": report.excluded_musts(),
        "passedTests": [r["testcase"] for r in requirements if r["status"] == "PASSED" and r["testcase"]],
        "failedTests": [
            r["testcase"] for r in requirements if r["status"] in ("FAILED", "ERROR") and r["testcase"]
        ],
        "startedAt": _text(report.run.get("startedAt")),
        "finishedAt": _text(report.run.get("finishedAt")),
        **_merge(report),
    }


def _merge(report: Report) -> dict[str, Any]:
    """A rerun (`kaic run --rerun-failed`) says it is a merge: the source run, the digest of its report.json,
    the probes re-run; the requirements above are judged over both runs' results."""
    source = report.run.get("rerunOf")
    if not source:
        return {}
    return {
        "rerunOf": {
            "runId": _text(source["runId"]),
            "digest": {"sha256": _text(source["reportSha256"])},
            "probes": [_text(name) for name in source["probes"]],
        }
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def keyid(private_key: EllipticCurvePrivateKey) -> str:
    from kaic.certify.keys import fingerprint

    return fingerprint(private_key.public_key())


def envelope(payload: bytes, private_key: EllipticCurvePrivateKey, payload_type: str = PAYLOAD_TYPE) -> dict:
    """A DSSE envelope with one ECDSA P-256/SHA-256 signature over PAE(payload_type, payload)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    sig = private_key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": _b64(payload),
        "signatures": [{"keyid": keyid(private_key), "sig": _b64(sig)}],
    }


def bundle(dsse: dict, hint: str) -> dict:
    """The envelope as a key-only Sigstore bundle: no certificate, no transparency-log entry.

    The key is named only by `publicKey.hint`: sigstore-go (cosign 3) skips a signature whose keyid is not
    its own SSH-style key id, so the bundle's signature carries no keyid.
    """
    signatures = [{"sig": s["sig"]} for s in dsse["signatures"]]
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {**dsse, "signatures": signatures},
    }


def statement(run_dir: Path, report_bytes: bytes) -> dict:
    """The statement over the artifacts in `run_dir`; report.json is taken from `report_bytes`, read once."""
    try:
        report = parse(report_bytes, run_dir / REPORT_FILE)
    except ReportError as exc:
        raise SignError(str(exc)) from None
    subjects = [{"name": REPORT_FILE, "digest": {"sha256": hashlib.sha256(report_bytes).hexdigest()}}]
    subjects += [
        {"name": name, "digest": {"sha256": sha256_file(run_dir / name)}}
        for name in ARTIFACTS[1:]
        if (run_dir / name).is_file()
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(report),
    }


def sign_run(run_dir: Path, private_key: EllipticCurvePrivateKey) -> list[Path]:
    """Sign every artifact in `run_dir`; an already signed folder is refused, not re-signed."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not (run_dir / REPORT_FILE).is_file():
        raise SignError(f"{run_dir}: not a kaic result folder (no {REPORT_FILE})")
    if existing := [name for name in OUTPUTS if (run_dir / name).exists()]:
        raise SignError(
            f"{run_dir}: already signed ({', '.join(existing)}); remove those files to sign again"
        )
    try:
        report_bytes = (run_dir / REPORT_FILE).read_bytes()
    except OSError as exc:
        raise SignError(f"{run_dir / REPORT_FILE}: cannot read: {exc.strerror or exc}") from None
    payload = json.dumps(statement(run_dir, report_bytes), sort_keys=True, separators=(",", ":")).encode()
    dsse = envelope(payload, private_key)
    detached = private_key.sign(report_bytes, ec.ECDSA(hashes.SHA256()))
    texts = {
        ENVELOPE_FILE: json.dumps(dsse, indent=2) + "\n",
        BUNDLE_FILE: json.dumps(bundle(dsse, keyid(private_key)), indent=2) + "\n",
        SIGNATURE_FILE: _b64(detached),
    }
    try:
        return [atomic_write_text(run_dir / name, text) for name, text in texts.items()]
    except OSError as exc:
        raise SignError(
            f"{run_dir}: cannot write the signatures there ({exc.strerror or exc}); "
            "sign a writable copy of the folder"
        ) from None
