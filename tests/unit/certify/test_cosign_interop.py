"""Real cosign verifies what kaic signs, offline, and rejects a tampered report.

cosign comes from `make cosign` (.tools/bin) or PATH. Without it these tests skip, except in CI (CI=true),
where a missing cosign is a failure: there the interop claim must be proven, not assumed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_signing import PASSWORD, signed_run

from kaic.certify import keys
from kaic.certify import sign as signer
from kaic.results.run_dir import (
    BUNDLE_FILE,
    E2E_LOG_FILE,
    ENVELOPE_FILE,
    JUNIT_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    SIGNATURE_FILE,
)

LOCAL_COSIGN = Path(__file__).resolve().parents[3] / ".tools" / "bin" / "cosign"


@pytest.fixture(scope="module")
def cosign() -> str:
    found = str(LOCAL_COSIGN) if LOCAL_COSIGN.exists() else shutil.which("cosign")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("cosign is required in CI: run `make cosign` first")
    pytest.skip("cosign is not installed (make cosign)")


@pytest.fixture
def run_cosign(cosign, tmp_path):
    """cosign with a throwaway HOME (no cached TUF root or config) and no Rekor: every check is offline."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}

    def run(*args: str, password: str | None = None) -> subprocess.CompletedProcess:
        extra = {"COSIGN_PASSWORD": password} if password is not None else {}
        return subprocess.run(
            [cosign, *args], env={**env, **extra}, capture_output=True, text=True, timeout=120, check=False
        )

    return run


@pytest.fixture
def signed(sample_report, tmp_path):
    return signed_run(sample_report, tmp_path)


def verify_blob(run_cosign, run_dir: Path, pub: Path) -> subprocess.CompletedProcess:
    return run_cosign(
        "verify-blob",
        "--key",
        str(pub),
        "--signature",
        str(run_dir / SIGNATURE_FILE),
        "--insecure-ignore-tlog=true",
        str(run_dir / REPORT_FILE),
    )


def verify_attestation(
    run_cosign,
    run_dir: Path,
    pub: Path,
    how: str,
    blob: str = REPORT_FILE,
    kind: str = signer.PREDICATE_TYPE,
) -> subprocess.CompletedProcess:
    """`--bundle report.sigstore.json`, or the legacy `--signature report.intoto.json` (a bare envelope)."""
    source = BUNDLE_FILE if how == "--bundle" else ENVELOPE_FILE
    return run_cosign(
        "verify-blob-attestation",
        "--key",
        str(pub),
        how,
        str(run_dir / source),
        "--type",
        kind,
        "--insecure-ignore-tlog=true",
        str(run_dir / blob),
    )


@pytest.fixture
def attestation_forms(run_cosign):
    """--bundle always; --signature with an envelope while this cosign still has it (deprecated in v3)."""
    help_text = run_cosign("verify-blob-attestation", "--help").stdout
    return ["--bundle", "--signature"] if "--signature" in help_text else ["--bundle"]


def test_cosign_verifies_the_detached_signature(run_cosign, signed):
    run_dir, pair = signed
    result = verify_blob(run_cosign, run_dir, pair.public)
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stderr


@pytest.mark.parametrize("blob", [REPORT_FILE, JUNIT_FILE, RESULTS_FILE, E2E_LOG_FILE])
def test_cosign_verifies_the_attestation_for_each_subject(run_cosign, signed, attestation_forms, blob):
    run_dir, pair = signed
    for how in attestation_forms:
        result = verify_attestation(run_cosign, run_dir, pair.public, how, blob)
        assert result.returncode == 0, (how, result.stderr)
        assert "Verified OK" in result.stderr


def test_cosign_rejects_a_tampered_report(run_cosign, signed, attestation_forms):
    run_dir, pair = signed
    with (run_dir / REPORT_FILE).open("a") as fh:
        fh.write(" ")
    assert verify_blob(run_cosign, run_dir, pair.public).returncode != 0
    for how in attestation_forms:
        result = verify_attestation(run_cosign, run_dir, pair.public, how)
        assert result.returncode != 0, how
        assert "digest" in result.stderr, result.stderr


def test_cosign_rejects_another_key_and_another_predicate_type(run_cosign, signed, tmp_path):
    run_dir, pair = signed
    other = keys.generate(tmp_path / "other", b"x")
    assert verify_blob(run_cosign, run_dir, other.public).returncode != 0
    assert verify_attestation(run_cosign, run_dir, other.public, "--bundle").returncode != 0
    result = verify_attestation(
        run_cosign, run_dir, pair.public, "--bundle", kind="https://slsa.dev/provenance/v1"
    )
    assert result.returncode != 0 and "predicate type" in result.stderr


def test_cosign_imports_a_kaic_key_once_decrypted(run_cosign, signed, tmp_path):
    """cosign reads plain PKCS#8 only, so `cosign import-key-pair` takes the key after `openssl pkey`."""
    from cryptography.hazmat.primitives import serialization

    _, pair = signed
    plain = tmp_path / "plain.pem"
    private = keys.load_private(str(pair.private), PASSWORD.encode())
    plain.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    prefix = tmp_path / "imported"
    result = run_cosign(
        "import-key-pair", "--key", str(plain), "--output-key-prefix", str(prefix), "-y", password="p"
    )
    assert result.returncode == 0, result.stderr
    assert keys.fingerprint(keys.load_public(Path(f"{prefix}.pub"))) == pair.fingerprint
