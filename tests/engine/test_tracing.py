"""OpenTelemetry across processes: one trace from a caller's span through the API request, the RabbitMQ message
and the worker's task run to the notification's outbound HTTP call; and nothing of OpenTelemetry when off.

The caller is this test, with the SDK's in-memory exporter; the API and the worker are subprocesses that export
OTLP over HTTP to a receiver of the test's own (the real protocol: protobuf ExportTraceServiceRequest).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.api.conftest import TOKENS, TOKENS_ENV, Server
from tests.conftest import ROOT, wait_for_state, wait_until
from tests.local_http import reply

pytestmark = pytest.mark.timeout(120)
KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint keeping every span it is sent."""

    def __init__(self):
        self.spans: list[dict] = []
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReceiverHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}.get("service.name")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append({
                        "service": service, "name": span.name, "kind": KINDS.get(span.kind, span.kind),
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex() or None,
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                    })
        reply(self, 200, ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")


def _value(value):
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


class Gateway(ThreadingHTTPServer):
    """An SMS gateway: accepts every message, keeps the headers it was sent."""

    def __init__(self):
        self.headers_seen: list[dict] = []
        super().__init__(("127.0.0.1", 0), _GatewayHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _GatewayHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.headers_seen.append(dict(self.headers))
        reply(self, 200, json.dumps({"message_id": "sms-1"}).encode())


def _serving(server: ThreadingHTTPServer):
    """A fixture's body: *server* while the test runs, then shut down and closed."""
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver():
    yield from _serving(Receiver())


@pytest.fixture
def gateway():
    yield from _serving(Gateway())


def test_one_trace_from_the_caller_through_api_message_and_worker_to_the_outbound_http_call(
        env, engine, start_worker, receiver, gateway):
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    sms = {"CLAW_SMS_URL": f"http://127.0.0.1:{gateway.server_address[1]}/send", "CLAW_SMS_API_KEY": "sms-test-key-1"}
    start_worker(queues=("notification_default",), extra_env={**otel, **sms})
    server = Server({**env, **otel, "CLAW_API_TOKENS": TOKENS_ENV}, workers=1)
    try:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("the caller").start_as_current_span("send a text", kind=SpanKind.CLIENT) as caller:
            headers = {"Authorization": f"Bearer {TOKENS['submit']}", "X-Request-ID": "trace-test-1"}
            TraceContextTextMapPropagator().inject(headers, context=set_span_in_context(caller))
            answer = requests.post(f"{server.url}/api/v1/tasks/notifications/send", headers=headers, timeout=30,
                                   json={"channel": "sms", "recipient": "+14155550100", "body": "traced"})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        assert wait_for_state(engine, task_id, ("SUCCESS", "FAILURE"))["state"] == "SUCCESS"

        (caller_span,) = exporter.get_finished_spans()
        trace_id = f"{caller_span.context.trace_id:032x}"

        def chain():
            spans = [s for s in receiver.spans if s["trace_id"] == trace_id]
            request = [s for s in spans if s["kind"] == "SERVER" and s["name"] == "POST /api/v1/tasks/notifications/send"]
            run = [s for s in spans if s["kind"] == "CONSUMER" and s["name"] == "run send_notification"]
            outbound = [s for s in spans if s["kind"] == "CLIENT" and s["name"] == "POST"
                        and s["service"] == "claw-pipeline-worker"]
            return request and run and outbound and (request[0], run[0], outbound[0], spans)

        request, run, outbound, spans = wait_until(chain, 20, message=f"the spans of trace {trace_id}")
        assert request["parent"] == f"{caller_span.context.span_id:016x}"
        assert request["service"] == "claw-pipeline-api" and request["attributes"]["claw.request_id"] == "trace-test-1"
        assert request["attributes"]["http.response.status_code"] == 202
        assert run["parent"] == request["span_id"]  # the context travelled in the message
        assert run["attributes"]["claw.task_id"] == task_id and run["attributes"]["claw.outcome"] == "SUCCESS"
        assert run["attributes"]["claw.attempt"] == 1 and run["attributes"]["messaging.destination.name"].endswith("notification_default")
        assert run["attributes"]["claw.request_id"] == "trace-test-1"
        assert outbound["parent"] == run["span_id"]  # the SMS gateway call is a child of the task run
        # (The instrumentation of a Redis Cluster client names no db.system: its spans carry db.redis.*.)
        assert any(s["name"].startswith(("EVALSHA", "HGETALL", "MULTI", "EXEC", "PUBLISH", "GET"))
                   and (s["attributes"].get("db.system") == "redis" or any(k.startswith("db.redis.") for k in s["attributes"]))
                   for s in spans), "no Redis child span"
        assert gateway.headers_seen[-1]["traceparent"].split("-")[1] == trace_id  # and it went on to the gateway
        # Work that no request or task started (heartbeats) starts no trace of its own.
        assert all(s["parent"] or s["kind"] in ("SERVER", "CONSUMER") for s in receiver.spans)
    finally:
        server.close()


def test_with_tracing_off_no_tracing_code_is_imported_and_no_middleware_added(env):
    code = (
        "import sys; from api.app import create_app; from pipeline.engine import make_engine;"
        "engine = make_engine(); create_app(engine);"
        "names = [type(m).__name__ for m in engine.broker.middleware];"
        "assert 'TaskTracing' not in names, names;"
        # redis-py 8 imports opentelemetry.sdk.metrics by itself when the SDK is installed; ours loads nothing.
        "loaded = [m for m in sys.modules if m.startswith(('pipeline.observability.otel', 'opentelemetry.sdk.trace',"
        " 'opentelemetry.instrumentation', 'opentelemetry.exporter', 'opentelemetry.propagate'))];"
        "assert not loaded, loaded; engine.close(); print('off')"
    )
    clean = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, "CLAW_API_TOKENS": TOKENS_ENV}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "off", done.stderr
