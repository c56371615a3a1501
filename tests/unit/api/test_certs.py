"""The cluster's TLS files: the serving certificate names what pods and the host use to reach the
apiserver (10.96.0.1, kubernetes.default.svc[.cluster.local], loopback), files are private, a second
call reuses them, and a certificate from an older state dir that lacks a name is replaced (same CA,
so kubeconfigs stay valid)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kbox.api.certs import TlsFiles, ensure_certificates


def _handshake(files: TlsFiles, server_name: str) -> None:
    """A TLS handshake in memory: the server with its files, a client trusting only the CA."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = files.server_context().wrap_bio(to_server, to_client, server_side=True)
    client_context = ssl.create_default_context(cafile=str(files.ca_cert))
    client = client_context.wrap_bio(to_client, to_server, server_hostname=server_name)
    finished = {id(client): False, id(server): False}
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
                finished[id(side)] = True
            except ssl.SSLWantReadError:
                pass
        if all(finished.values()):
            return
    raise AssertionError("the handshake did not finish")


def _names(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(sans.get_values_for_type(x509.DNSName)), {
        str(i) for i in sans.get_values_for_type(x509.IPAddress)
    }


def test_serving_certificate_names_in_cluster_addresses(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    dns, ips = _names(files.cert)
    assert {
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "kubernetes.default",
        "localhost",
    } <= dns
    assert {"10.96.0.1", "127.0.0.1"} <= ips
    for path in (files.key, tmp_path / "ca.key"):
        assert path.stat().st_mode & 0o777 == 0o600
    # A TLS client that trusts the CA accepts the server under the in-cluster names and address.
    for name in ("kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.96.0.1"):
        _handshake(files, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(files, "elsewhere.example")
    again = ensure_certificates(tmp_path)
    assert again.cert.read_bytes() == files.cert.read_bytes()


def test_an_old_certificate_without_the_service_names_is_replaced(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    ca_before = files.ca_cert.read_bytes()
    ca_key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(ca_before)
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    old = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.cert.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    renewed = ensure_certificates(tmp_path)
    dns, ips = _names(renewed.cert)
    assert "kubernetes.default.svc.cluster.local" in dns and "10.96.0.1" in ips
    assert renewed.ca_cert.read_bytes() == ca_before
