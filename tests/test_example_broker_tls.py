"""The example project's broker over TLS (``amqps://``, Amazon MQ), with real TLS handshakes.

docs/production/amazon-mq.md says that an ``amqps://`` ``CELERY_BROKER_URL`` verifies
the broker's certificate *and* its host name. No RabbitMQ here listens with TLS, so a
TLS server of the test's own plays the broker's part on 127.0.0.1, with a certificate
for ``localhost`` signed by a CA made for the test. The example project, in a
subprocess with its own settings, connects to it as a worker would
(``app.connection_for_write().connect()``), and the server records whether the
handshake completed:

- with the CA given (``CELERY_BROKER_CA_FILE``) and the certificate's name in the URL,
  the handshake completes (the connection fails only after, at AMQP, which the server
  does not speak);
- the same certificate reached under another name (``127.0.0.1``) is refused;
- a CA the client does not trust (the system's CAs only) is refused.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.test_example_project import example_env, shell_json

#: The broker connection a worker of the example project opens, and its TLS options.
_OPTIONS = """
import json, ssl
from config.celery import app
conn = app.connection_for_write()
conn.connect_timeout = 5
options = dict(conn.ssl) if isinstance(conn.ssl, dict) else conn.ssl
if isinstance(options, dict):
    options["cert_reqs"] = ssl.VerifyMode(options["cert_reqs"]).name
answer = {"ssl": options, "host": conn.hostname, "port": conn.port}
"""
#: ... then connected, with the chain of the error it ends with.
_CONNECT = """
try:
    conn.connect()
    answer["error"] = None
except Exception as exc:
    chain = []
    while exc is not None:
        chain.append(repr(exc))
        exc = exc.__cause__ or exc.__context__
    answer["error"] = " <- ".join(chain)
"""
_PRINT = "print(json.dumps(answer))\n"


# -- certificates --------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool, dns=None):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> dict[str, Path]:
    """A CA, and a server certificate for ``localhost`` that it signed, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("django-async-reports test CA")
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        _name("localhost"), ca_name, server_key.public_key(), ca_key, ca=False, dns="localhost"
    )
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -- the stand-in broker -------------------------------------------------------------
@dataclass
class TLSServer:
    """Accepts connections on 127.0.0.1, completes TLS handshakes, then closes them."""

    port: int
    handshakes: list[bool] = field(default_factory=list)  # one per connection: completed?


@pytest.fixture
def tls_server(certificates) -> Iterator[TLSServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    server = TLSServer(port=listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.settimeout(10)
            try:
                with context.wrap_socket(sock, server_side=True):
                    server.handshakes.append(True)  # then closed: no AMQP here
            except (ssl.SSLError, OSError):
                server.handshakes.append(False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _connect(tmp_path, url: str, ca_file: Path | None = None) -> dict:
    env = example_env(tmp_path)
    env["CELERY_BROKER_URL"] = url
    if ca_file is not None:
        env["CELERY_BROKER_CA_FILE"] = str(ca_file)
    return shell_json(env, _OPTIONS + _CONNECT + _PRINT)


# -- the tests -----------------------------------------------------------------------
def test_the_connection_gets_the_tls_options_with_the_host_name(tmp_path):
    host = "b-0123abcd.mq.eu-west-1.amazonaws.com"
    env = example_env(tmp_path)
    env["CELERY_BROKER_URL"] = f"amqps://user:secret@{host}:5671/reports"
    options = shell_json(env, _OPTIONS + _PRINT)
    assert options == {
        "ssl": {"cert_reqs": "CERT_REQUIRED", "server_hostname": host},
        "host": host,
        "port": 5671,
    }
    # Plain amqp:// (a broker on this machine, the tests') keeps no TLS.
    env["CELERY_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:5672//"
    assert shell_json(env, _OPTIONS + _PRINT)["ssl"] is False


def test_a_broker_with_a_trusted_certificate_for_its_name_is_reached(
    tmp_path, tls_server, certificates
):
    url = f"amqps://guest:guest@localhost:{tls_server.port}//"
    answer = _connect(tmp_path, url, certificates["ca"])
    assert answer["ssl"] == {
        "cert_reqs": "CERT_REQUIRED",
        "server_hostname": "localhost",
        "ca_certs": str(certificates["ca"]),
    }
    assert tls_server.handshakes and all(tls_server.handshakes), tls_server.handshakes
    # What fails is AMQP after the handshake, never the certificate.
    assert "CERTIFICATE_VERIFY_FAILED" not in (answer["error"] or "")


def test_the_same_certificate_under_another_name_is_refused(tmp_path, tls_server, certificates):
    url = f"amqps://guest:guest@127.0.0.1:{tls_server.port}//"
    answer = _connect(tmp_path, url, certificates["ca"])
    assert "CERTIFICATE_VERIFY_FAILED" in answer["error"], answer["error"]
    assert "127.0.0.1" in answer["error"], answer["error"]  # "IP address mismatch"
    assert tls_server.handshakes and not any(tls_server.handshakes), tls_server.handshakes


def test_a_certificate_from_an_untrusted_ca_is_refused(tmp_path, tls_server):
    url = f"amqps://guest:guest@localhost:{tls_server.port}//"
    answer = _connect(tmp_path, url)  # the system's CAs only
    assert "CERTIFICATE_VERIFY_FAILED" in answer["error"], answer["error"]
    assert "issuer" in answer["error"], answer["error"]  # "unable to get local issuer"
    assert tls_server.handshakes and not any(tls_server.handshakes), tls_server.handshakes
