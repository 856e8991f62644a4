"""Real protocol servers on loopback for the notification tests.

* ``smtp_plain`` / ``smtp_starttls`` / ``smtp_ssl`` — aiosmtpd servers that keep every message;
  the TLS ones use a self-signed certificate made here with the openssl CLI, and
  ``smtp_starttls`` demands STARTTLS and AUTH LOGIN (PLAIN is switched off).
* ``http_server`` — a threaded http.server that records requests and answers from a script.
* ``redis_ns`` — a Redis client and a namespace of its own, deleted after the test.
* ``make_settings`` — NotificationSettings built from explicit values (the CLAW_* environment is ignored).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import redis

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipeline.notifications.config import NotificationSettings
from tests.local_http import reply

sys.path.insert(0, str(Path(__file__).parent))  # for ``import notify_helpers`` in any import mode

from notify_helpers import HMAC_SECRET, SMS_KEY, SMTP_PASSWORD, SMTP_USER, Answer, free_port  # noqa: E402


# --- environment isolation ------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_claw_env(monkeypatch):
    """Settings in these tests come from explicit values, never from the developer's CLAW_* variables."""
    for name in list(os.environ):
        if name.startswith("CLAW_") and not name.startswith("CLAW_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings():
    def make(**overrides: Any) -> NotificationSettings:
        return NotificationSettings(**overrides)

    return make


def with_defaults(make_settings: Callable[..., NotificationSettings], **defaults: Any) -> Callable[..., NotificationSettings]:
    """A channel's settings factory: *defaults*, replaced by whatever a call names."""
    return lambda **overrides: make_settings(**{**defaults, **overrides})


# --- Redis ----------------------------------------------------------------------------------------
@dataclass
class RedisNS:
    client: redis.Redis
    namespace: str


@pytest.fixture
def redis_ns():
    client = redis.Redis(host="127.0.0.1", port=6379, db=0, decode_responses=True)
    namespace = f"test-notify-{uuid.uuid4().hex[:12]}"
    try:
        yield RedisNS(client, namespace)
    finally:
        keys = list(client.scan_iter(f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


# --- certificates ---------------------------------------------------------------------------------
@dataclass
class Cert:
    cert: str
    key: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def _make_cert_with_cryptography(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _make_cert_with_openssl(cert: Path, key: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory) -> Cert:
    """A self-signed certificate for localhost/127.0.0.1 (cryptography package, else the openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _make_cert_with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl CLI is available")
        _make_cert_with_openssl(cert, key)
    return Cert(str(cert), str(key))


# --- SMTP -----------------------------------------------------------------------------------------
@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    authenticated: Optional[bool]
    tls: bool


class SmtpRecorder:
    """aiosmtpd handler: keeps messages; ``rcpt_replies[address]`` refuses that recipient with a reply."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_delay = 0.0
        self.auth_mechanisms: list[str] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content,
                    session.authenticated,
                    server.transport.get_extra_info("ssl_object") is not None,
                )
            )
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 2.0.0 Ok: queued as TEST123"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.auth_mechanisms.append(mechanism)
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpRecorder
    controller: Controller = field(repr=False)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


def _start_smtp(**kwargs: Any):
    handler = SmtpRecorder()
    if kwargs.pop("with_auth", False):
        kwargs["authenticator"] = handler.authenticate
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="mx.test", **kwargs)
    controller.start()
    return SmtpServer("127.0.0.1", port, handler, controller)


@pytest.fixture
def smtp_plain():
    server = _start_smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_starttls(self_signed_cert):
    server = _start_smtp(
        tls_context=self_signed_cert.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=["PLAIN"],
        with_auth=True,
    )
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_ssl(self_signed_cert):
    server = _start_smtp(ssl_context=self_signed_cert.server_context())
    yield server
    server.controller.stop()


@pytest.fixture
def email_settings(make_settings):
    """Settings for a given server: ``email_settings(server, mode=..., **more)``."""

    def make(server: SmtpServer, **overrides: Any) -> NotificationSettings:
        values = dict(
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_mode="plain",
            smtp_from="alerts@claw.example",
            smtp_from_name="Claw Alerts",
            smtp_timeout_seconds=5,
        )
        values.update(overrides)
        return make_settings(**values)

    return make


# --- HTTP -----------------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpServer:
    """Records every request; answers with the next scripted :class:`Answer` (or 200 when none is left)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Answer] = []
        self.lock = threading.Lock()
        #: called with each Request before it is answered (e.g. to kill the caller mid-request)
        self.on_request = None
        #: behave like a provider that honours Idempotency-Key: a repeated key gets the first answer again
        self.idempotent = False
        self.delivered: dict[str, bytes] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Request("POST", self.path, dict(self.headers.items()), body)
                with outer.lock:
                    outer.requests.append(request)
                    key = request.headers.get("Idempotency-Key", "")
                    if outer.idempotent and key in outer.delivered:
                        answer = Answer(body=outer.delivered[key])
                    else:
                        answer = outer.script.pop(0) if outer.script else Answer(body={"id": f"prov-{len(outer.requests)}"})
                        if outer.idempotent and 200 <= answer.status < 300:
                            outer.delivered[key] = json.dumps(answer.body).encode()
                if outer.on_request is not None:
                    outer.on_request(request)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                try:
                    reply(self, answer.status, payload, headers=answer.headers)
                except OSError:
                    self.close_connection = True  # the caller is gone

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)


@pytest.fixture
def http_server():
    server = HttpServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def push_settings(make_settings, http_server):
    return with_defaults(
        make_settings,
        push_apps={
            "shop": {"url": f"{http_server.url}/hooks/push", "secret": HMAC_SECRET},
            "admin": {"url": f"{http_server.url}/hooks/admin", "secret": "another-secret-value-42"},
        },
        push_default_app="shop",
        push_timeout_seconds=5,
    )


@pytest.fixture
def sms_settings(make_settings, http_server):
    return with_defaults(
        make_settings,
        sms_url=f"{http_server.url}/v1/sms",
        sms_api_key=SMS_KEY,
        sms_sender="CLAW",
        sms_template_id="tpl-otp-1",
        sms_timeout_seconds=5,
    )
