"""The local cluster's PKI: every certificate chains to the right CA and names the right identity."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from kaic.localcluster import pki

SERVICE_IP = "100.96.0.1"


@pytest.fixture(scope="module")
def cluster_pki(tmp_path_factory: pytest.TempPathFactory) -> pki.ClusterPKI:
    made = pki.ClusterPKI(tmp_path_factory.mktemp("pki"))
    made.create(SERVICE_IP)
    return made


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_serving_certificate_verifies_for_loopback_and_service_ip(cluster_pki: pki.ClusterPKI) -> None:
    store = Store([load(cluster_pki.ca.cert)])
    leaf = load(cluster_pki.serving.cert)
    for address in ("127.0.0.1", SERVICE_IP):
        verifier = (
            PolicyBuilder()
            .store(store)
            .time(datetime.datetime.now(datetime.UTC))
            .build_server_verifier(x509.IPAddress(ipaddress.ip_address(address)))
        )
        chain = verifier.verify(leaf, [])
        assert chain[-1] == load(cluster_pki.ca.cert)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize("identity", pki.CLIENTS, ids=lambda identity: identity.file_stem)
def test_client_certificates_chain_to_cluster_ca(
    cluster_pki: pki.ClusterPKI, identity: pki.ClientIdentity
) -> None:
    cert = load(cluster_pki.client(identity).cert)
    cert.verify_directly_issued_by(load(cluster_pki.ca.cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == identity.user
    groups = [attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == list(identity.groups)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_admin_is_cluster_admin(cluster_pki: pki.ClusterPKI) -> None:
    assert "system:masters" in pki.ADMIN.groups


def test_front_proxy_client_chains_to_front_proxy_ca_only(cluster_pki: pki.ClusterPKI) -> None:
    cert = load(cluster_pki.client(pki.FRONT_PROXY_CLIENT).cert)
    cert.verify_directly_issued_by(load(cluster_pki.front_proxy_ca.cert))
    with pytest.raises(ValueError):
        cert.verify_directly_issued_by(load(cluster_pki.ca.cert))


def test_keys_match_certificates_and_are_private(cluster_pki: pki.ClusterPKI) -> None:
    for pair in (cluster_pki.ca, cluster_pki.serving, cluster_pki.client(pki.ADMIN)):
        key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
        assert key.public_key() == load(pair.cert).public_key()
        assert pair.key.stat().st_mode & 0o077 == 0


def test_service_account_key_pair(cluster_pki: pki.ClusterPKI) -> None:
    private = serialization.load_pem_private_key(cluster_pki.service_account.key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(cluster_pki.service_account.cert.read_bytes())
    assert private.public_key() == public


def test_kubelet_certificates_name_the_node_for_the_node_authorizer(cluster_pki: pki.ClusterPKI) -> None:
    client_pair, serving = cluster_pki.issue_kubelet("kaic-worker", "100.64.128.1")
    client_cert, serving_cert = load(client_pair.cert), load(serving.cert)
    for cert in (client_cert, serving_cert):
        cert.verify_directly_issued_by(load(cluster_pki.ca.cert))
    assert client_cert.subject.rfc4514_string() == "CN=system:node:kaic-worker,O=system:nodes"
    names = serving_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("100.64.128.1")]
    usages = serving_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
