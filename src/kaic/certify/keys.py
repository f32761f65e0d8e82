"""ECDSA P-256 signing keys: the algorithm cosign, sigstore-js and KMS/HSM signers all share.

The private key is encrypted PKCS#8 PEM, readable by its owner only; the public key is PKIX PEM; a key is
known by its fingerprint, `sha256:` + hex SHA-256 of the DER SubjectPublicKeyInfo, which is also what
`openssl pkey -pubin -outform DER | sha256sum` prints. Passphrases come from the environment or a prompt,
never from the command line, where other users could read them.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kaic.results.atomic import atomic_write_text

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey

PASSWORD_ENV = "KAIC_KEY_PASSWORD"
ENV_SCHEME = "env://"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class KeyProblem(Exception):
    """A key that cannot be written, read or used; the message says what to do."""


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    fingerprint: str


def passphrase(confirm: bool = False) -> bytes:
    """$KAIC_KEY_PASSWORD, else a prompt on the terminal; without either there is no safe source."""
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV].encode()
    if not sys.stdin.isatty():
        raise KeyProblem(f"no passphrase: set {PASSWORD_ENV} or run in a terminal")
    first = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise KeyProblem("the passphrases differ")
    return first.encode()


def fingerprint(public_key: EllipticCurvePublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def generate(path_prefix: Path | str, passphrase: bytes) -> KeyPair:
    """Write `<prefix>.key` and `<prefix>.pub`; an existing file of either name is never replaced."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path = Path(f"{path_prefix}{PRIVATE_SUFFIX}")
    public_path = Path(f"{path_prefix}{PUBLIC_SUFFIX}")
    if existing := [str(p) for p in (private_path, public_path) if p.exists()]:
        raise KeyProblem(f"{', '.join(existing)}: already exists; kaic never overwrites a key")
    if not passphrase:
        raise KeyProblem("an empty passphrase would leave the private key unencrypted")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        # The temporary file is created 0600 and stays so: the key is never readable by others, even briefly.
        atomic_write_text(private_path, pem.decode("ascii"), mode=0o600)
        atomic_write_text(public_path, public_pem.decode("ascii"))
        public_path.chmod(0o644)
    except OSError as exc:
        with contextlib.suppress(OSError):
            private_path.unlink(missing_ok=True)  # never half a pair
        raise KeyProblem(
            f"{path_prefix}: cannot write the key pair there ({exc.strerror or exc}); "
            "choose a writable folder"
        ) from None
    return KeyPair(private_path, public_path, fingerprint(key.public_key()))


def _read_private_pem(ref: str) -> bytes:
    if ref.startswith(ENV_SCHEME):
        var = ref.removeprefix(ENV_SCHEME)
        if not os.environ.get(var):
            raise KeyProblem(f"{ref}: the environment variable {var} is not set")
        return os.environ[var].encode()
    path = Path(ref)
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise KeyProblem(
                f"{path}: the private key is readable or writable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
            )
        return path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the private key: {exc.strerror}") from None


def load_private(ref: str, passphrase: bytes | Callable[[], bytes]) -> EllipticCurvePrivateKey:
    """The P-256 key at `ref` (a path or env://VAR); a callable passphrase is asked only for an encrypted
    key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = _read_private_pem(ref)
    secret = None
    if b"ENCRYPTED" in pem:
        secret = passphrase() if callable(passphrase) else passphrase
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except (ValueError, TypeError):
        raise KeyProblem(f"{ref}: wrong passphrase, or not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"{ref}: not an ECDSA P-256 key (kaic signs with P-256 only)")
    return key


def load_public(path: Path) -> EllipticCurvePublicKey:
    """A PKIX PEM P-256 public key file, such as `<prefix>.pub` or `cosign public-key` output."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the public key: {exc.strerror}") from None
    return public_from_pem(pem, str(path))


def public_from_pem(pem: bytes, where: str) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise KeyProblem(f"{where}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"{where}: not an ECDSA P-256 public key")
    return key
