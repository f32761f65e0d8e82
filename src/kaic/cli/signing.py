"""`kaic keys generate`, `kaic sign DIR` and `kaic verify DIR`: signed, checkable results.

Kept apart from kaic.cli.run so these commands load neither the kubernetes client nor pytest; cryptography
loads only when a key is used. Bad input exits 2 like every kaic command; `verify` exits 1 on any finding.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

DEFAULT_KEY = "env://KAIC_SIGNING_KEY"
_run_dir = click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))


@contextmanager
def input_errors() -> Iterator[None]:
    """Key, folder and trust-file problems are usage errors: kaic's one-line message, exit 2."""
    from kaic.certify.keys import KeyProblem
    from kaic.certify.sign import SignError
    from kaic.certify.verify import TrustError
    from kaic.cli.errors import InputError

    try:
        yield
    except (KeyProblem, SignError, TrustError) as exc:
        raise InputError(str(exc)) from None


@click.group()
def keys() -> None:
    """ECDSA P-256 signing keys (encrypted PKCS#8 private key, PKIX public key)."""


@keys.command()
@click.argument("prefix", type=click.Path(dir_okay=False, path_type=Path))
def generate(prefix: Path) -> None:
    """Write PREFIX.key (mode 0600) and PREFIX.pub and print the key's fingerprint.

    The passphrase comes from $KAIC_KEY_PASSWORD or a prompt. Existing files are never overwritten.
    """
    from kaic.certify import keys as keys_mod

    with input_errors():
        pair = keys_mod.generate(prefix, keys_mod.passphrase(confirm=True))
    click.echo(f"kaic: wrote {pair.private} (private, mode 0600) and {pair.public}", err=True)
    click.echo(pair.fingerprint)


@click.command()
@_run_dir
@click.option(
    "--key",
    "key_ref",
    default=DEFAULT_KEY,
    show_default=True,
    help="Private key: a file, or env://VAR holding the PEM. Passphrase: $KAIC_KEY_PASSWORD or a prompt.",
)
def sign(directory: Path, key_ref: str) -> None:
    """Sign a run: report.intoto.json (DSSE), report.sigstore.json (bundle), report.json.sig (cosign)."""
    from kaic.certify import keys as keys_mod
    from kaic.certify.sign import sign_run

    with input_errors():
        written = sign_run(directory, keys_mod.load_private(key_ref, keys_mod.passphrase))
    for path in written:
        click.echo(str(path))


@click.command()
@_run_dir
@click.option(
    "--key",
    "key_paths",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trusted public key (PEM), repeatable. With --trust, each must be pinned there.",
)
@click.option(
    "--trust",
    "--policy",
    "trust_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust file: keys: [{fingerprint: sha256:..., name, notAfter, publicKey}].",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(directory: Path, key_paths: tuple[Path, ...], trust_file: Path | None, output: str) -> None:
    """Check a signed run: trusted key, signature, statement, every artifact's digest, report agreement.

    Exit 0: verified; 1: any finding; 2: bad input.
    """
    from kaic.certify.verify import load_trust, verify_run

    with input_errors():
        trust = load_trust(key_paths, trust_file, directory)
    result = verify_run(directory, trust)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.ok:
        assert result.signer is not None
        click.echo(
            f"verified {directory}: signed by {result.signer.name} ({result.signer.fingerprint}); "
            f"{len(result.subjects)} artifacts match: {', '.join(result.subjects)}"
        )
    else:
        click.echo(f"NOT verified {directory}:")
        for finding in result.findings:
            click.echo(f"  {finding.code}: {finding.message}")
    sys.exit(0 if result.ok else 1)
