"""Verifying a signed run: is it signed by a key the reader trusts, and are its files the ones signed?

Checks run in this order, and each failure is a named finding, never an exception:
(1) trust: pinned fingerprints, expiry; (2) the DSSE signature, checked before the payload is parsed;
(3) payloadType, statement type and predicate type; (4) every subject's digest against the bytes on disk,
and every artifact on disk is a subject; (5) report.json agrees with the signed predicate. Keys come only
from the caller; nothing in the run folder (which the signer controls) decides which key is trusted.

Finding codes: trust-fingerprint-mismatch, key-not-pinned, key-in-run-dir, envelope-missing,
envelope-malformed, unknown-key, bad-signature, key-expired, bundle-malformed, bundle-signature,
bundle-mismatch, detached-signature, payload-type, statement-malformed, statement-type, predicate-type,
unexpected-subject, subject-missing, subject-mismatch, unsigned-artifact, report-unreadable,
report-disagrees.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaic.certify import sign as signer
from kaic.certify.keys import KeyProblem, fingerprint, load_public, public_from_pem
from kaic.results.report import Report
from kaic.results.run_dir import BUNDLE_FILE, ENVELOPE_FILE, REPORT_FILE, SIGNATURE_FILE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey


class TrustError(Exception):
    """The trust input itself is unusable (unreadable file, bad YAML, no key at all): a usage error."""


@dataclass(frozen=True)
class Finding:
    code: str
    message: str


@dataclass(frozen=True)
class TrustedKey:
    name: str
    fingerprint: str
    key: EllipticCurvePublicKey
    not_after: date | None = None

    def expired(self, today: date) -> bool:
        return self.not_after is not None and today > self.not_after


@dataclass
class Trust:
    """The keys a verification may accept, and what was wrong with the trust input (findings, not errors)."""

    keys: list[TrustedKey]
    problems: list[Finding] = field(default_factory=list)

    @classmethod
    def of(cls, public_keys: Sequence[EllipticCurvePublicKey]) -> Trust:
        return cls([TrustedKey(fingerprint(k), fingerprint(k), k) for k in public_keys])


@dataclass
class Verification:
    run_dir: Path
    findings: list[Finding] = field(default_factory=list)
    signer: TrustedKey | None = None
    subjects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signer is not None and not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "runDir": str(self.run_dir),
            "verified": self.ok,
            "signer": self.signer and {"name": self.signer.name, "fingerprint": self.signer.fingerprint},
            "subjects": self.subjects,
            "findings": [{"code": f.code, "message": f.message} for f in self.findings],
        }


class _Stop(Exception):
    """A check whose failure makes the later ones meaningless."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.finding = Finding(code, message)


# ---- trust input -------------------------------------------------------------------------------------------


def _inside(path: Path, run_dir: Path) -> bool:
    return path.resolve().is_relative_to(run_dir.resolve())


def _public_key(path: Path, run_dir: Path) -> EllipticCurvePublicKey:
    if _inside(path, run_dir):
        raise TrustError(
            f"{path}: a key inside the run folder proves nothing; use the signer's published key"
        )
    try:
        return load_public(path)
    except KeyProblem as exc:
        raise TrustError(str(exc)) from None


def _not_after(value: Any, where: str) -> date | None:
    """YAML reads 2027-01-01 as a date and a timestamp as a datetime; a quoted string is parsed here."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise TrustError(f"{where}.notAfter: {value!r} is not a date such as 2027-01-01") from None


def _entry_key(entry: dict, where: str, base: Path, run_dir: Path) -> EllipticCurvePublicKey | None:
    """An entry's `publicKey`: inline PEM, or a file relative to the trust file; absent for a bare pin."""
    material = entry.get("publicKey")
    if material is None:
        return None
    if not isinstance(material, str):
        raise TrustError(f"{where}.publicKey: a PEM block or a file path")
    if material.lstrip().startswith("-----BEGIN"):
        try:
            return public_from_pem(material.encode(), f"{where}.publicKey")
        except KeyProblem as exc:
            raise TrustError(str(exc)) from None
    return _public_key(base / material, run_dir)


def load_trust(key_paths: Sequence[Path], trust_file: Path | None, run_dir: Path) -> Trust:
    """Keys from `--key` files and/or a trust file; with both, every `--key` must be pinned by the file.

    Trust file (YAML): `keys: [{fingerprint: sha256:..., name: ..., notAfter: 2027-01-01, publicKey: ...}]`;
    `publicKey` (inline PEM or a path relative to the file) is optional where `--key` supplies the key.
    """
    given = [(p.name, _public_key(p, run_dir)) for p in key_paths]
    if trust_file is None:
        if not given:
            raise TrustError("no trusted key: give --key PUB or --trust FILE")
        return Trust([TrustedKey(name, fingerprint(k), k) for name, k in given])
    import yaml

    try:
        doc = yaml.safe_load(trust_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TrustError(f"{trust_file}: cannot read the trust file: {exc}") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TrustError(f"{trust_file}: expected `keys:`, a list of {{fingerprint, name, notAfter}}")
    trust = Trust([])
    pins: dict[str, tuple[str, date | None]] = {}
    for i, entry in enumerate(entries):
        where = f"{trust_file}: keys[{i}]"
        if not isinstance(entry, dict) or not str(entry.get("fingerprint", "")).startswith("sha256:"):
            raise TrustError(f"{where}: needs `fingerprint: sha256:<hex>`")
        pin = str(entry["fingerprint"]).lower()
        name = str(entry.get("name") or pin)
        pins[pin] = (name, _not_after(entry.get("notAfter"), where))
        key = _entry_key(entry, where, trust_file.parent, run_dir)
        if key is None:
            continue
        if (actual := fingerprint(key)) != pin:
            trust.problems.append(
                Finding(
                    "trust-fingerprint-mismatch", f"trust entry {name} pins {pin} but its key is {actual}"
                )
            )
            continue
        trust.keys.append(TrustedKey(name, pin, key, pins[pin][1]))
    for label, key in given:
        actual = fingerprint(key)
        if actual not in pins:
            trust.problems.append(
                Finding("key-not-pinned", f"--key {label} ({actual}) is not pinned by {trust_file}")
            )
            continue
        trust.keys.append(TrustedKey(pins[actual][0], actual, key, pins[actual][1]))
    if not trust.keys and not trust.problems:
        raise TrustError(
            f"{trust_file}: pins fingerprints but holds no publicKey; give the key with --key PUB"
        )
    return trust


# ---- the checks --------------------------------------------------------------------------------------------


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (DSSE allows either); anything else is a ValueError."""
    altchars = b"-_" if ("-" in text or "_" in text) else None
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)


@dataclass(frozen=True)
class _Envelope:
    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes]]  # (keyid hint, DER signature)


def _parse_envelope(doc: Any, code: str, where: str) -> _Envelope:
    """The DSSE fields, type-checked and decoded; the payload itself stays unparsed until it is verified."""
    try:
        sigs = doc["signatures"]
        if not isinstance(doc["payloadType"], str) or not isinstance(sigs, list) or not sigs:
            raise TypeError("payloadType must be a string and signatures a non-empty list")
        return _Envelope(
            doc["payloadType"],
            b64decode(doc["payload"]),
            [(str(s.get("keyid") or ""), b64decode(s["sig"])) for s in sigs],
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _Stop(code, f"{where}: not a DSSE envelope ({type(exc).__name__}: {exc})") from None


def _read_json(path: Path, code: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise _Stop("envelope-missing", f"{path.name} is missing: the run is not signed") from None
    except (OSError, ValueError) as exc:
        raise _Stop(code, f"{path.name}: not JSON ({exc})") from None


def _verifies(key: EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _signed_by(env: _Envelope, keys: Sequence[TrustedKey]) -> list[TrustedKey]:
    """The trusted keys that made a signature over the envelope; the keyid is never consulted."""
    data = signer.pae(env.payload_type, env.payload)
    return [k for k in keys if any(_verifies(k.key, sig, data) for _, sig in env.signatures)]


def _signature(run_dir: Path, trust: Trust, today: date) -> tuple[TrustedKey, _Envelope]:
    """Check (2): a current trusted key signed report.intoto.json; `_Stop` otherwise."""
    path = run_dir / ENVELOPE_FILE
    env = _parse_envelope(_read_json(path, "envelope-malformed"), "envelope-malformed", path.name)
    signers = _signed_by(env, trust.keys)
    if not signers:
        hints = {keyid for keyid, _ in env.signatures}
        known = [k.name for k in trust.keys if k.fingerprint in hints]
        if known:
            raise _Stop(
                "bad-signature",
                f"{path.name}: the signature does not verify with {', '.join(known)}: "
                "the envelope was changed after signing",
            )
        raise _Stop(
            "unknown-key",
            f"{path.name}: not signed by any trusted key (it names {', '.join(sorted(hints)) or 'no key'})",
        )
    current = [k for k in signers if not k.expired(today)]
    if not current:
        raise _Stop("key-expired", f"signed by {signers[0].name}, trusted only until {signers[0].not_after}")
    return current[0], env


def _bundle(run_dir: Path, env: _Envelope, keys: Sequence[TrustedKey]) -> list[Finding]:
    """report.sigstore.json, when present, must carry the same statement under one trusted signature."""
    path = run_dir / BUNDLE_FILE
    if not path.exists():
        return []
    try:
        doc = _read_json(path, "bundle-malformed")
        if not isinstance(doc, dict) or doc.get("mediaType") != signer.BUNDLE_MEDIA_TYPE:
            raise _Stop("bundle-malformed", f"{path.name}: mediaType is not {signer.BUNDLE_MEDIA_TYPE}")
        inner = _parse_envelope(doc.get("dsseEnvelope"), "bundle-malformed", path.name)
    except _Stop as stop:
        return [stop.finding]
    if len(inner.signatures) != 1:
        return [Finding("bundle-malformed", f"{path.name}: a bundle's envelope holds exactly one signature")]
    if not _signed_by(inner, keys):
        return [
            Finding("bundle-signature", f"{path.name}: the signature does not verify with the trusted key")
        ]
    if (inner.payload_type, inner.payload) != (env.payload_type, env.payload):
        return [Finding("bundle-mismatch", f"{path.name} signs another statement than {ENVELOPE_FILE}")]
    return []


def _detached(run_dir: Path, key: TrustedKey) -> list[Finding]:
    """report.json.sig, when present, is a signature by the same key over report.json's bytes."""
    sig_path, report_path = run_dir / SIGNATURE_FILE, run_dir / REPORT_FILE
    if not sig_path.exists() or not report_path.exists():
        return []  # an absent report.json is a missing subject, found in check (4)
    try:
        signature = b64decode(sig_path.read_text(encoding="ascii").strip())
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        signature = b""
    if _verifies(key.key, signature, report_path.read_bytes()):
        return []
    return [
        Finding("detached-signature", f"{sig_path.name} does not verify over {REPORT_FILE} with {key.name}")
    ]


def _statement(env: _Envelope) -> tuple[dict[str, str], dict]:
    """Check (3), then the statement's subjects (name -> sha256) and predicate."""
    if env.payload_type != signer.PAYLOAD_TYPE:
        raise _Stop("payload-type", f"payloadType is {env.payload_type!r}, not {signer.PAYLOAD_TYPE}")
    try:
        doc = json.loads(env.payload)
        kind, predicate_type, predicate = doc["_type"], doc["predicateType"], doc["predicate"]
        subjects = {s["name"]: s["digest"]["sha256"] for s in doc["subject"]}
        if len(subjects) != len(doc["subject"]) or not isinstance(predicate, dict):
            raise ValueError("subject names repeat or the predicate is not an object")
        if not all(isinstance(n, str) and isinstance(d, str) for n, d in subjects.items()):
            raise TypeError("subject names and digests are strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise _Stop(
            "statement-malformed", f"the signed statement is not an in-toto statement: {exc}"
        ) from None
    if kind != signer.STATEMENT_TYPE:
        raise _Stop("statement-type", f"_type is {kind!r}, not {signer.STATEMENT_TYPE}")
    if predicate_type != signer.PREDICATE_TYPE:
        raise _Stop("predicate-type", f"predicateType is {predicate_type!r}, not {signer.PREDICATE_TYPE}")
    return subjects, predicate


def _subjects(run_dir: Path, subjects: dict[str, str]) -> list[Finding]:
    """Check (4): each signed file is on disk with the signed bytes, and no artifact escaped the signature."""
    findings = []
    for name, digest in subjects.items():
        if name not in signer.ARTIFACTS:  # never a path from the signed data: it could point anywhere
            findings.append(Finding("unexpected-subject", f"{name!r} is not a kaic artifact"))
            continue
        path = run_dir / name
        if not path.is_file():
            findings.append(Finding("subject-missing", f"{name} is signed but missing"))
        elif (actual := signer.sha256_file(path)) != digest.lower():
            findings.append(Finding("subject-mismatch", f"{name} changed since signing (sha256 {actual})"))
    findings += [
        Finding("unsigned-artifact", f"{name} is not covered by the signature")
        for name in signer.ARTIFACTS
        if name not in subjects and (run_dir / name).exists()
    ]
    return findings


def _agreement(run_dir: Path, predicate: dict) -> list[Finding]:
    """Check (5): report.json states the requirements and result that were signed."""
    path = run_dir / REPORT_FILE
    if not path.is_file():
        return []
    try:
        mine = signer.predicate(Report.from_dict(json.loads(path.read_bytes())))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return [Finding("report-unreadable", f"{REPORT_FILE}: not a kaic report ({exc})")]
    listed = predicate.get("requirements")
    signed = {str(r.get("id")): r for r in listed if isinstance(r, dict)} if isinstance(listed, list) else {}
    ours = {r["id"]: r for r in mine["requirements"]}
    differ = sorted(i for i in signed.keys() | ours.keys() if signed.get(i) != ours.get(i))
    if predicate.get("result") != mine["result"]:
        differ.append(f"result ({predicate.get('result')} signed, {mine['result']} in {REPORT_FILE})")
    for key in ("verdict", "mustsNotRun"):  # absent from statements signed before kaic recorded them
        if key in predicate and predicate[key] != mine[key]:
            differ.append(f"{key} ({predicate[key]} signed, {mine[key]} in {REPORT_FILE})")
    if predicate.get("rerunOf") != mine.get("rerunOf"):  # a merge, and of which run, is signed or not at all
        differ.append(f"rerunOf ({predicate.get('rerunOf')} signed, {mine.get('rerunOf')} in {REPORT_FILE})")
    if differ:
        return [
            Finding(
                "report-disagrees", f"{REPORT_FILE} and the signed predicate differ on {', '.join(differ)}"
            )
        ]
    return []


def signed_digests(run_dir: Path) -> dict[str, str] | None:
    """The subjects (name -> sha256) of the statement in `run_dir`'s envelope, its signature unchecked; None
    when the folder is unsigned. A consistency check that a signed file was not changed since; only
    `verify_run` says who signed. A malformed envelope is a ValueError."""
    if not (run_dir / ENVELOPE_FILE).exists():
        return None
    try:
        path = run_dir / ENVELOPE_FILE
        subjects, _ = _statement(
            _parse_envelope(_read_json(path, "envelope-malformed"), "envelope-malformed", path.name)
        )
    except _Stop as stop:
        raise ValueError(stop.finding.message) from None
    return subjects


def verify_run(
    run_dir: Path, trust: Trust | Sequence[EllipticCurvePublicKey], today: date | None = None
) -> Verification:
    """Every check on `run_dir`; `ok` only when a current trusted key signed exactly these files."""
    trust = trust if isinstance(trust, Trust) else Trust.of(trust)
    today = today or datetime.now(UTC).date()
    result = Verification(run_dir, findings=list(trust.problems))
    try:
        key, env = _signature(run_dir, trust, today)
        result.findings += _bundle(run_dir, env, [key]) + _detached(run_dir, key)
        subjects, predicate = _statement(env)
    except _Stop as stop:
        result.findings.append(stop.finding)
        return result
    result.signer, result.subjects = key, list(subjects)
    result.findings += _subjects(run_dir, subjects) + _agreement(run_dir, predicate)
    return result
