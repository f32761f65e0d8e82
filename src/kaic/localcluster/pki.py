"""Certificates and keys for the local cluster, made with `cryptography`.

Every component talks TLS on loopback and authenticates with a client certificate, the way a kubeadm
cluster does, so that kaic's RBAC and authentication checks meet the real code paths. ECDSA P-256 keys
keep `up` fast; nothing here is meant to outlive one cluster.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
# Host names and addresses the loopback serving certificate answers to.
SERVING_DNS = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pair:
    """A certificate and its key on disk, as component flags want them."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate names: user (CN) and groups (O)."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


# Component identities follow the names the default RBAC bootstrap policy grants.
ADMIN = ClientIdentity("admin", "kaic-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
# kwok acts as every kubelet and the DRA driver publishes cluster-wide objects: both get admin rights.
KWOK = ClientIdentity("kwok", "kaic-kwok", ("system:masters",))
APISERVER_KUBELET = ClientIdentity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)
)
FRONT_PROXY_CLIENT = ClientIdentity("front-proxy-client", "front-proxy-client")
# The Cluster Autoscaler creates and deletes nodes and writes its status in kube-system.
CLUSTER_AUTOSCALER = ClientIdentity("cluster-autoscaler", "kaic-cluster-autoscaler", ("system:masters",))
# Karpenter creates, taints and deletes nodes, evicts pods and finalizes its objects cluster-wide; its chart's
# RBAC is Helm templates (ClusterRoles, Roles in its namespace, kube-system and kube-node-lease), so it gets
# the same rights as the Cluster Autoscaler.
KARPENTER = ClientIdentity("karpenter", "kaic-karpenter", ("system:masters",))
# The real node's dra-example-driver: cluster-wide like the simulated driver (its chart grants a ClusterRole).
DRA_DRIVER = ClientIdentity("dra-driver", "kaic-dra-driver", ("system:masters",))
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK, APISERVER_KUBELET, CLUSTER_AUTOSCALER, DRA_DRIVER)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, groups: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(ca: bool) -> x509.KeyUsage:
    """Signing only (ECDSA keys do not encipher); a CA also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.CertificateBuilder:
    """The fields every certificate here shares; back-dated a little against clock skew."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_key_usage(ca=ca), critical=True)
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write(pair: Pair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pair.key, key)


class Authority:
    """A self-signed CA that issues leaf certificates."""

    def __init__(self, common_name: str, pair: Pair) -> None:
        self.pair = pair
        self.key = _new_key()
        subject = _name(common_name)
        self.cert = (
            _builder(subject, subject, self.key, ca=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        _write(pair, self.cert, self.key)

    @classmethod
    def load(cls, pair: Pair) -> Authority:
        """The CA that `create` wrote, read back to sign certificates later."""
        authority = cls.__new__(cls)
        authority.pair = pair
        authority.cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        authority.key = key
        return authority

    def issue(
        self,
        pair: Pair,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
    ) -> None:
        """Sign a leaf certificate for `subject` and write it with its fresh key."""
        key = _new_key()
        builder = (
            _builder(subject, self.cert.subject, key, ca=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        _write(pair, builder.sign(self.key, hashes.SHA256()), key)


class ClusterPKI:
    """File layout of the cluster's PKI under one directory; `create` writes it all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = self._pair("ca")
        self.front_proxy_ca = self._pair("front-proxy-ca")
        self.serving = self._pair("serving")
        self.service_account = Pair(directory / "sa.pub", directory / "sa.key")

    def _pair(self, stem: str) -> Pair:
        return Pair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")

    def client(self, identity: ClientIdentity) -> Pair:
        return self._pair(identity.file_stem)

    def create(self, service_ip: str) -> None:
        """Write both CAs, the loopback serving certificate, every client certificate and the SA keys.

        `service_ip` is the first address of the service range: in-cluster clients reach the apiserver
        under it, so the serving certificate must name it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = Authority("kaic-cluster-ca", self.ca)
        front_proxy = Authority("kaic-front-proxy-ca", self.front_proxy_ca)
        ca.issue(
            self.serving,
            _name("kaic-loopback"),
            ExtendedKeyUsageOID.SERVER_AUTH,
            dns_names=SERVING_DNS,
            ip_addresses=("127.0.0.1", service_ip),
        )
        for identity in CLIENTS:
            ca.issue(
                self.client(identity), _name(identity.user, identity.groups), ExtendedKeyUsageOID.CLIENT_AUTH
            )
        front_proxy.issue(
            self.client(FRONT_PROXY_CLIENT),
            _name(FRONT_PROXY_CLIENT.user),
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        self._write_service_account_keys()

    def issue_client(self, identity: ClientIdentity) -> Pair:
        """A client certificate for a component started after `create` (with `CLIENTS`' layout)."""
        Authority.load(self.ca).issue(
            self.client(identity), _name(identity.user, identity.groups), ExtendedKeyUsageOID.CLIENT_AUTH
        )
        return self.client(identity)

    def issue_kubelet(self, node: str, address: str) -> tuple[Pair, Pair]:
        """A real kubelet's client certificate (as the Node authorizer expects) and serving certificate."""
        ca = Authority.load(self.ca)
        user = f"system:node:{node}"
        client, serving = self._pair(f"kubelet-{node}"), self._pair(f"kubelet-{node}-serving")
        ca.issue(client, _name(user, ("system:nodes",)), ExtendedKeyUsageOID.CLIENT_AUTH)
        ca.issue(
            serving, _name(user), ExtendedKeyUsageOID.SERVER_AUTH, dns_names=(node,), ip_addresses=(address,)
        )
        return client, serving

    def issue_serving(
        self, stem: str, dns_names: tuple[str, ...], ip_addresses: tuple[str, ...] = ()
    ) -> Pair:
        """A serving certificate from the cluster CA, e.g. for a webhook the apiserver calls by Service
        name."""
        pair = self._pair(stem)
        Authority.load(self.ca).issue(
            pair,
            _name(dns_names[0]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
        )
        return pair

    def _write_service_account_keys(self) -> None:
        key = _new_key()
        _write_key(self.service_account.key, key)
        self.service_account.cert.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
