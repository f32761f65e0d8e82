"""Keys, signing and verification: the DSSE vector, round trips, and every tamper case as a named finding."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from kaic.certify import keys
from kaic.certify import sign as signer
from kaic.certify.verify import b64decode, load_trust, verify_run
from kaic.cli.signing import keys as keys_group
from kaic.cli.signing import sign, verify
from kaic.results.report import Report, save
from kaic.results.run_dir import (
    BUNDLE_FILE,
    E2E_LOG_FILE,
    ENVELOPE_FILE,
    FACTS_FILE,
    JUNIT_FILE,
    PRODUCT_FILE,
    REPORT_FILE,
    SIGNATURE_FILE,
)
from kaic.results.writers import write_all

PASSWORD = "correct horse"
TODAY = date(2026, 9, 16)


@pytest.fixture(autouse=True)
def passphrase_env(monkeypatch):
    monkeypatch.setenv(keys.PASSWORD_ENV, PASSWORD)
    monkeypatch.delenv("KAIC_SIGNING_KEY", raising=False)


def make_run(report: Report, run_dir: Path) -> Path:
    """A run folder as `kaic run` leaves it: report.json, the derived artifacts and facts.json."""
    run_dir.mkdir()
    save(report, run_dir)
    write_all(report, run_dir)
    (run_dir / FACTS_FILE).write_text(json.dumps({"clusterUID": "u-1", "version": {"gitVersion": "v1.36.1"}}))
    return run_dir


def signed_run(report: Report, tmp_path: Path) -> tuple[Path, keys.KeyPair]:
    """A signed run folder and the key pair that signed it (the key lives outside the folder)."""
    pair = keys.generate(tmp_path / "kaic", PASSWORD.encode())
    run_dir = make_run(report, tmp_path / "run")
    signer.sign_run(run_dir, keys.load_private(str(pair.private), PASSWORD.encode()))
    return run_dir, pair


@pytest.fixture
def signed(sample_report, tmp_path):
    return signed_run(sample_report, tmp_path)


def run_verify(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(verify, [*args, "-o", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def codes(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"]}


def read_envelope(run_dir: Path, name: str = ENVELOPE_FILE) -> dict:
    return json.loads((run_dir / name).read_text())


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def statement_of(run_dir: Path) -> dict:
    return json.loads(base64.b64decode(read_envelope(run_dir)["payload"]))


def resign(
    run_dir: Path, pair: keys.KeyPair, statement: dict, payload_type: str = signer.PAYLOAD_TYPE
) -> None:
    """Sign another statement with the trusted key: only checks after the signature can catch it."""
    key = keys.load_private(str(pair.private), PASSWORD.encode())
    dsse = signer.envelope(json.dumps(statement).encode(), key, payload_type)
    write_json(run_dir / ENVELOPE_FILE, dsse)
    write_json(run_dir / BUNDLE_FILE, signer.bundle(dsse, signer.keyid(key)))


# ---- DSSE and the statement --------------------------------------------------------------------------------


def test_pae_matches_the_dsse_test_vector():
    assert signer.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_b64decode_takes_both_alphabets_with_or_without_padding():
    data = bytes(range(250, 256)) + b"\xfb\xff"
    for text in (base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("=")):
        assert b64decode(text) == data
    with pytest.raises(ValueError):
        b64decode("ab%c")


def test_statement_subjects_are_the_bytes_on_disk_and_nothing_is_a_float(signed):
    run_dir, _ = signed
    statement = statement_of(run_dir)
    assert statement["_type"] == signer.STATEMENT_TYPE and statement["predicateType"] == signer.PREDICATE_TYPE
    names = [s["name"] for s in statement["subject"]]
    assert names == [n for n in signer.ARTIFACTS if (run_dir / n).exists()] and FACTS_FILE in names
    for subject in statement["subject"]:
        assert (
            subject["digest"]["sha256"]
            == hashlib.sha256((run_dir / subject["name"]).read_bytes()).hexdigest()
        )

    def walk(value):
        assert not isinstance(value, float), value
        for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
            walk(child)

    walk(statement)


def test_predicate_summarises_the_report(sample_report):
    predicate = signer.predicate(sample_report)
    assert predicate["result"] == "FAILED" and predicate["verdict"] == "not-conformant"
    assert predicate["checklist"] == {
        "name": "AIConformance-1.35.yaml",
        "version": "1.35",
        "digest": {"sha256": "1" * 64},
    }
    assert predicate["cluster"]["kubernetesVersion"] == "v1.36.1"
    by_id = {r["id"]: r for r in predicate["requirements"]}
    assert by_id["secure_accelerator_access"] == {
        "id": "secure_accelerator_access",
        "level": "MUST",
        "status": "FAILED",
        "testcase": "TestSecureAcceleratorAccess",
    }
    assert by_id["cluster_autoscaling"]["status"] == "NOT_APPLICABLE"
    assert by_id["gang_scheduling"]["status"] == "UNKNOWN"  # never probed: judged as unknown
    sample_report.verdict["result"] = "conformant"
    sample_report.cluster["serverVersion"] = {"major": "1", "minor": "36", "gitVersion": "v1.36.2"}
    predicate = signer.predicate(sample_report)
    assert predicate["result"] == "PASSED" and predicate["cluster"]["kubernetesVersion"] == "v1.36.2"


# ---- round trips -------------------------------------------------------------------------------------------


def test_cli_round_trip_generate_sign_verify(sample_report, tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(keys_group, ["generate", str(tmp_path / "kaic")])
    assert result.exit_code == 0, result.output
    fingerprint = result.stdout.strip()
    assert fingerprint == keys.fingerprint(keys.load_public(tmp_path / "kaic.pub"))
    run_dir = make_run(sample_report, tmp_path / "run")
    monkeypatch.setenv("KAIC_SIGNING_KEY", (tmp_path / "kaic.key").read_text())  # the default env://
    result = runner.invoke(sign, [str(run_dir)])
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in result.stdout.split()) == sorted(signer.OUTPUTS)
    code, report = run_verify(str(run_dir), "--key", str(tmp_path / "kaic.pub"))
    assert code == 0 and report["verified"] and report["findings"] == []
    assert report["signer"]["fingerprint"] == fingerprint and REPORT_FILE in report["subjects"]
    text = runner.invoke(verify, [str(run_dir), "--key", str(tmp_path / "kaic.pub")])
    assert text.exit_code == 0 and text.stdout.startswith(f"verified {run_dir}")


def test_trust_file_with_key_path_or_pins_plus_key(signed, tmp_path):
    run_dir, pair = signed
    trust = tmp_path / "trust.yaml"
    trust.write_text(
        f"keys:\n- {{fingerprint: '{pair.fingerprint}', name: ci, notAfter: 2099-01-01,"
        " publicKey: kaic.pub}\n"
    )
    code, report = run_verify(str(run_dir), "--trust", str(trust))
    assert code == 0 and report["signer"]["name"] == "ci"
    trust.write_text(f"keys:\n- fingerprint: {pair.fingerprint}\n  name: pinned\n")
    code, report = run_verify(str(run_dir), "--trust", str(trust), "--key", str(pair.public))
    assert code == 0 and report["signer"]["name"] == "pinned"
    inline = "\n".join("    " + line for line in pair.public.read_text().splitlines())
    trust.write_text(f"keys:\n- fingerprint: {pair.fingerprint}\n  publicKey: |\n{inline}\n")
    assert run_verify(str(run_dir), "--policy", str(trust))[0] == 0


def test_envelope_and_bundle_carry_the_same_signature(signed):
    run_dir, pair = signed
    bundle = read_envelope(run_dir, BUNDLE_FILE)
    assert bundle["mediaType"] == signer.BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": pair.fingerprint}, "tlogEntries": []}
    env = read_envelope(run_dir)
    assert env["signatures"] == [{"keyid": pair.fingerprint, "sig": env["signatures"][0]["sig"]}]
    assert bundle["dsseEnvelope"] == {**env, "signatures": [{"sig": env["signatures"][0]["sig"]}]}


# ---- tampering: exit 1 and a named finding -----------------------------------------------------------------


def edit_report(run_dir: Path, pair: keys.KeyPair) -> None:
    text = (run_dir / REPORT_FILE).read_text()
    (run_dir / REPORT_FILE).write_text(text.replace('"outcome": "failed"', '"outcome": "passed"'))


def edit_junit(run_dir: Path, pair: keys.KeyPair) -> None:
    with (run_dir / JUNIT_FILE).open("a") as fh:
        fh.write("<!-- -->")


def edit_payload(run_dir: Path, pair: keys.KeyPair) -> None:
    env = read_envelope(run_dir)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["result"] = "PASSED"
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    write_json(run_dir / ENVELOPE_FILE, env)


def flip_signature(run_dir: Path, pair: keys.KeyPair) -> None:
    env = read_envelope(run_dir)
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_json(run_dir / ENVELOPE_FILE, env)


def change_payload_type(run_dir: Path, pair: keys.KeyPair) -> None:
    env = read_envelope(run_dir)
    env["payloadType"] = "application/json"
    write_json(run_dir / ENVELOPE_FILE, env)


def sign_with_other_key(run_dir: Path, pair: keys.KeyPair) -> None:
    other = keys.generate(run_dir.parent / "other", b"x")
    statement = statement_of(run_dir)
    dsse = signer.envelope(json.dumps(statement).encode(), keys.load_private(str(other.private), b"x"))
    write_json(run_dir / ENVELOPE_FILE, dsse)


def resigned(mutate):
    def tamper(run_dir: Path, pair: keys.KeyPair) -> None:
        statement = statement_of(run_dir)
        payload_type = mutate(statement) or signer.PAYLOAD_TYPE
        resign(run_dir, pair, statement, payload_type)

    return tamper


def _set(path: str, value: object):
    def mutate(statement: dict) -> None:
        *parents, last = path.split(".")
        target = statement
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _add_subject(statement: dict) -> None:
    statement["subject"].append({"name": "../../etc/passwd", "digest": {"sha256": "0" * 64}})


def _flip_requirement(statement: dict) -> None:
    statement["predicate"]["requirements"][0]["status"] = "PASSED"


def write_file(name: str, text: str = "x"):
    return lambda run_dir, pair: (run_dir / name).write_text(text)


def remove(name: str):
    return lambda run_dir, pair: (run_dir / name).unlink()


def rewrite_bundle(mutate):
    def tamper(run_dir: Path, pair: keys.KeyPair) -> None:
        bundle = read_envelope(run_dir, BUNDLE_FILE)
        mutate(bundle)
        write_json(run_dir / BUNDLE_FILE, bundle)

    return tamper


def _bundle_signature_of_other_statement(bundle: dict) -> None:
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(b"{}").decode()


TAMPER = {
    "report.json edited": (edit_report, {"subject-mismatch", "report-disagrees", "detached-signature"}),
    "junit.xml edited": (edit_junit, {"subject-mismatch"}),
    "signed file missing": (remove(E2E_LOG_FILE), {"subject-missing"}),
    "unsigned artifact added": (write_file(PRODUCT_FILE), {"unsigned-artifact"}),
    "payload edited": (edit_payload, {"bad-signature"}),
    "signature flipped": (flip_signature, {"bad-signature"}),
    "payloadType changed": (change_payload_type, {"bad-signature"}),
    "signed by an unknown key": (sign_with_other_key, {"unknown-key"}),
    "envelope missing": (remove(ENVELOPE_FILE), {"envelope-missing"}),
    "envelope not JSON": (write_file(ENVELOPE_FILE, "{not json"), {"envelope-malformed"}),
    "envelope a list": (write_file(ENVELOPE_FILE, "[]"), {"envelope-malformed"}),
    "envelope without signatures": (
        write_file(ENVELOPE_FILE, '{"payloadType": "x", "payload": "", "signatures": []}'),
        {"envelope-malformed"},
    ),
    "payload not base64": (
        write_file(ENVELOPE_FILE, '{"payloadType": "x", "payload": "%%", "signatures": [{"sig": "AA"}]}'),
        {"envelope-malformed"},
    ),
    "signature not a string": (
        write_file(ENVELOPE_FILE, '{"payloadType": "x", "payload": "", "signatures": [{"sig": 1}]}'),
        {"envelope-malformed"},
    ),
    "trusted key signs another payloadType": (
        resigned(lambda s: "application/vnd.other+json"),
        {"payload-type"},
    ),
    "trusted key signs another statement type": (
        resigned(_set("_type", "https://in-toto.io/Statement/v0.1")),
        {"statement-type"},
    ),
    "trusted key signs another predicate type": (
        resigned(_set("predicateType", "https://slsa.dev/provenance/v1")),
        {"predicate-type"},
    ),
    "trusted key signs a statement without subjects": (
        resigned(_set("subject", "none")),
        {"statement-malformed"},
    ),
    "trusted key signs a path outside the run": (resigned(_add_subject), {"unexpected-subject"}),
    "trusted key signs a predicate the report contradicts": (
        resigned(_flip_requirement),
        {"report-disagrees"},
    ),
    "trusted key says a MUST was not run that was": (
        resigned(_set("predicate.mustsNotRun", ["gang_scheduling"])),
        {"report-disagrees"},
    ),
    "trusted key signs another verdict": (
        resigned(_set("predicate.verdict", "conformant")),
        {"report-disagrees"},
    ),
    "detached signature replaced": (
        write_file(SIGNATURE_FILE, base64.b64encode(b"0" * 70).decode()),
        {"detached-signature"},
    ),
    "detached signature not base64": (
        write_file(SIGNATURE_FILE, "not base64!"),
        {"detached-signature"},
    ),
    "bundle of another statement": (
        rewrite_bundle(_bundle_signature_of_other_statement),
        {"bundle-signature"},
    ),
    "bundle media type": (rewrite_bundle(_set("mediaType", "application/json")), {"bundle-malformed"}),
    "bundle with two signatures": (
        rewrite_bundle(lambda b: b["dsseEnvelope"]["signatures"].append(b["dsseEnvelope"]["signatures"][0])),
        {"bundle-malformed"},
    ),
}


@pytest.mark.parametrize("case", TAMPER)
def test_tampering_fails_with_a_named_finding(signed, case):
    run_dir, pair = signed
    tamper, expected = TAMPER[case]
    tamper(run_dir, pair)
    code, report = run_verify(str(run_dir), "--key", str(pair.public))
    assert code == 1 and not report["verified"]
    assert codes(report) == expected, report["findings"]
    text = CliRunner().invoke(verify, [str(run_dir), "--key", str(pair.public)])
    assert text.exit_code == 1 and all(f"  {c}: " in text.stdout for c in expected), text.output


def test_a_base64url_unpadded_signature_is_accepted(signed):
    run_dir, pair = signed
    env = read_envelope(run_dir)
    sig = base64.b64decode(env["signatures"][0]["sig"])
    env["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    env["payload"] = base64.urlsafe_b64encode(base64.b64decode(env["payload"])).decode()
    write_json(run_dir / ENVELOPE_FILE, env)
    assert run_verify(str(run_dir), "--key", str(pair.public))[0] == 0


def test_a_wrong_keyid_is_only_a_hint(signed):
    run_dir, pair = signed
    env = read_envelope(run_dir)
    env["signatures"][0]["keyid"] = "someone-else"
    write_json(run_dir / ENVELOPE_FILE, env)
    assert run_verify(str(run_dir), "--key", str(pair.public))[0] == 0


def test_a_wrong_trusted_key_is_an_unknown_key(signed, tmp_path):
    run_dir, _ = signed
    other = keys.generate(tmp_path / "other", b"x")
    code, report = run_verify(str(run_dir), "--key", str(other.public))
    assert code == 1 and codes(report) == {"unknown-key"}


def test_trust_file_fingerprint_mismatch(signed, tmp_path):
    run_dir, _ = signed
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"keys:\n- {{fingerprint: 'sha256:{'ab' * 32}', name: ci, publicKey: kaic.pub}}\n")
    code, report = run_verify(str(run_dir), "--trust", str(trust))
    assert code == 1 and codes(report) == {"trust-fingerprint-mismatch", "unknown-key"}


def test_a_key_the_trust_file_does_not_pin(signed, tmp_path):
    run_dir, pair = signed
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"keys:\n- fingerprint: sha256:{'ab' * 32}\n")
    code, report = run_verify(str(run_dir), "--trust", str(trust), "--key", str(pair.public))
    assert code == 1 and codes(report) == {"key-not-pinned", "unknown-key"}


@pytest.mark.parametrize("not_after", ["2026-09-15", "'2026-09-15'", "2026-09-15T23:59:59Z"])
def test_an_expired_trust_entry_fails(signed, tmp_path, not_after):
    run_dir, pair = signed
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"keys:\n- {{fingerprint: '{pair.fingerprint}', name: old, notAfter: {not_after}}}\n")
    result = verify_run(run_dir, load_trust([pair.public], trust, run_dir), today=TODAY)
    assert [f.code for f in result.findings] == ["key-expired"] and not result.ok
    assert verify_run(run_dir, load_trust([pair.public], trust, run_dir), today=date(2026, 9, 15)).ok


def test_the_expiry_is_checked_against_today(signed, tmp_path):
    run_dir, pair = signed
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"keys:\n- {{fingerprint: '{pair.fingerprint}', notAfter: 2001-01-01}}\n")
    code, report = run_verify(str(run_dir), "--trust", str(trust), "--key", str(pair.public))
    assert code == 1 and codes(report) == {"key-expired"}


# ---- usage errors: exit 2 ----------------------------------------------------------------------------------


def usage_error(command, args: list[str]) -> str:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_verify_usage_errors(signed, tmp_path):
    run_dir, pair = signed
    assert "no trusted key" in usage_error(verify, [str(run_dir)])
    shipped = run_dir.parent / "run" / "kaic.pub"
    shutil.copy(pair.public, shipped)
    assert "inside the run folder" in usage_error(verify, [str(run_dir), "--key", str(shipped)])
    shipped.unlink()
    assert "not a PEM public key" in usage_error(verify, [str(run_dir), "--key", str(pair.private)])
    trust = tmp_path / "trust.yaml"
    for text, message in [
        ("keys: [", "cannot read the trust file"),
        ("keys: []", "expected `keys:`"),
        ("keys: [{name: x}]", "needs `fingerprint"),
        (f"keys: [{{fingerprint: '{pair.fingerprint}', notAfter: soon}}]", "not a date"),
        (f"keys: [{{fingerprint: '{pair.fingerprint}'}}]", "give the key with --key"),
    ]:
        trust.write_text(text)
        assert message in usage_error(verify, [str(run_dir), "--trust", str(trust)])


def test_sign_usage_errors(signed, sample_report, tmp_path, monkeypatch):
    run_dir, pair = signed
    key = ["--key", str(pair.private)]
    assert "already signed" in usage_error(sign, [str(run_dir), *key])
    assert "no report.json" in usage_error(sign, [str(tmp_path), *key])
    fresh = make_run(sample_report, tmp_path / "fresh")
    assert "KAIC_SIGNING_KEY is not set" in usage_error(sign, [str(fresh)])
    assert "cannot read the private key" in usage_error(
        sign, [str(fresh), "--key", str(tmp_path / "nope.key")]
    )
    monkeypatch.setenv(keys.PASSWORD_ENV, "wrong")
    assert "wrong passphrase" in usage_error(sign, [str(fresh), *key])
    monkeypatch.delenv(keys.PASSWORD_ENV)
    assert "set KAIC_KEY_PASSWORD" in usage_error(sign, [str(fresh), *key])
    assert not any((fresh / name).exists() for name in signer.OUTPUTS)


# ---- keys --------------------------------------------------------------------------------------------------


def test_generate_writes_an_owner_only_encrypted_key(tmp_path):
    pair = keys.generate(tmp_path / "k", PASSWORD.encode())
    assert os.stat(pair.private).st_mode & 0o777 == 0o600
    assert pair.private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert pair.public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert (
        keys.fingerprint(keys.load_private(str(pair.private), PASSWORD.encode()).public_key())
        == pair.fingerprint
    )


@pytest.mark.parametrize("existing", [".key", ".pub"])
def test_generate_never_overwrites(tmp_path, existing):
    (tmp_path / f"k{existing}").write_text("keep me")
    assert "already exists" in usage_error(keys_group, ["generate", str(tmp_path / "k")])
    assert (tmp_path / f"k{existing}").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == [f"k{existing}"]


def test_generate_needs_a_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.PASSWORD_ENV, "")
    assert "empty passphrase" in usage_error(keys_group, ["generate", str(tmp_path / "k")])
    monkeypatch.delenv(keys.PASSWORD_ENV)
    assert "set KAIC_KEY_PASSWORD" in usage_error(keys_group, ["generate", str(tmp_path / "k")])


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_key_readable_by_others_is_refused(signed, sample_report, tmp_path, mode):
    _, pair = signed
    pair.private.chmod(mode)
    fresh = make_run(sample_report, tmp_path / "fresh")
    assert "chmod 600" in usage_error(sign, [str(fresh), "--key", str(pair.private)])


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
def test_fingerprint_is_what_openssl_and_sha256sum_print(tmp_path):
    pair = keys.generate(tmp_path / "k", PASSWORD.encode())
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(pair.public), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert pair.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()


def test_the_commands_load_no_heavy_module():
    """Loading these commands loads no heavy module; cryptography and the rest wait until a command
    runs."""
    heavy = ("cryptography", "kubernetes", "pytest", "jsonschema", "rich")
    code = f"import sys, kaic.cli.signing; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
