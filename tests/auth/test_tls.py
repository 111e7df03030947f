"""`meao serve` over HTTPS, and with mutual TLS, using a throwaway CA made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.auth.conftest import bare_env, bearer, meao_cmd, start_serve

PACKAGES = "/app_pkgm/v1/app_packages"


@dataclass
class TlsPki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def context(self, client: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if client:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> TlsPki:
    folder = tmp_path_factory.mktemp("tls-pki")
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def builder(subject: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("meao test TLS CA"))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (builder("meao test TLS CA", ca_key).add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
          .sign(ca_key, hashes.SHA256()))
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaves = {}
    for stem, usage, san in (("server", ExtendedKeyUsageOID.SERVER_AUTH,
                              [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                             ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("oss.example")])):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (builder(f"meao test {stem}", key).add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.ExtendedKeyUsage([usage]), False)
                .add_extension(x509.SubjectAlternativeName(san), False).sign(ca_key, hashes.SHA256()))
        leaves[stem] = _write(folder, stem, cert, key)
    return TlsPki(ca_path, *leaves["server"], *leaves["client"])


def test_serve_over_https_with_certfile_and_keyfile(tls_pki: TlsPki, tmp_path: Path) -> None:
    served = start_serve(tmp_path, bare_env(tmp_path / "var"), "--certfile", str(tls_pki.server_cert),
                         "--keyfile", str(tls_pki.server_key), scheme="https", verify=tls_pki.context())
    try:
        assert "https://127.0.0.1" in served.output(), "the public URL is https"
        with httpx.Client(verify=tls_pki.context()) as http:
            assert http.get(served.base + PACKAGES).status_code == 401
            creds = json.loads((served.data_dir / "admin-credentials.json").read_text())
            token = http.post(f"{served.base}/oauth2/token", data={"grant_type": "client_credentials"},
                              auth=(creds["client_id"], creds["client_secret"])).json()["access_token"]
            assert http.get(served.base + PACKAGES, headers=bearer(token)).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(served.base.replace("https://", "http://") + PACKAGES, timeout=5)
        with pytest.raises(httpx.ConnectError):  # not trusted without the CA
            httpx.get(served.base + PACKAGES, timeout=5)
        # the operator CLI over HTTPS: trusts the CA through SSL_CERT_FILE, finds the admin credentials
        env = {**bare_env(served.data_dir), "MEAO_ENDPOINT": served.base, "SSL_CERT_FILE": str(tls_pki.ca)}
        cli = meao_cmd(env, "package", "list", "-f", "json")
        assert cli.returncode == 0, cli.stderr
    finally:
        served.stop()


def test_mutual_tls_from_the_environment_requires_a_client_certificate(tls_pki: TlsPki, tmp_path: Path) -> None:
    env = bare_env(tmp_path / "var", MEAO_TLS_CERTFILE=str(tls_pki.server_cert),
                   MEAO_TLS_KEYFILE=str(tls_pki.server_key), MEAO_TLS_CLIENT_CA=str(tls_pki.ca))
    served = start_serve(tmp_path, env, scheme="https", verify=tls_pki.context(client=True))
    try:
        with pytest.raises(httpx.HTTPError):  # the handshake fails without a client certificate
            httpx.get(served.base + PACKAGES, verify=tls_pki.context(), timeout=5)
        with httpx.Client(verify=tls_pki.context(client=True)) as http:
            resp = http.get(served.base + PACKAGES)
            assert resp.status_code == 401, "mutual TLS authenticates the peer; the API still wants a token"
    finally:
        served.stop()


def test_a_missing_key_or_unreadable_file_stops_the_start(tls_pki: TlsPki, tmp_path: Path) -> None:
    env = bare_env(tmp_path / "var")
    for args, says in ((["--certfile", str(tls_pki.server_cert)], "both a certificate and its key"),
                       (["--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(tls_pki.server_key)],
                        "cannot read the TLS file")):
        result = meao_cmd(env, "serve", "--port", "1", *args, cwd=tmp_path)
        assert result.returncode != 0 and says in result.stderr, result.stderr
