"""The OpenTelemetry side of :mod:`pipeline.observability.tracing` (the ``[tracing]`` extra).

Imported only when tracing is on. It sets the process's tracer provider
(OTLP over HTTP, batched), instruments Redis, outbound HTTP (``requests``)
and PostgreSQL (``psycopg``, when the knowledge extra is installed), and
holds the two span middleware: :class:`RequestTracing` (Falcon, one span per
API request) and :class:`TaskTracing` (Dramatiq, one span per task run).

Only a request or a task run may start a trace: the sampler drops a Redis
command or an HTTP call made outside both (a worker's heartbeat, the
scheduler's polling), which would otherwise each be a trace of one span.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Optional

from dramatiq.middleware import Middleware
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from pipeline.delivery import delivery_of
from pipeline.observability import logs

TRACER = "claw-pipeline"
#: The message option carrying the W3C trace context (``traceparent``, ``tracestate``).
TRACE_OPTION = "trace"
_provider: Optional[TracerProvider] = None


class EntryPointsOnly(Sampler):
    """Roots only for spans that begin work (an API request, a task run); children follow their parent."""

    ROOT_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        decision = Decision.RECORD_AND_SAMPLE if kind in self.ROOT_KINDS else Decision.DROP
        return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None)

    def get_description(self) -> str:
        return "EntryPointsOnly"


def start(service: str) -> None:
    global _provider
    name = os.environ.get("OTEL_SERVICE_NAME") or f"claw-pipeline-{service}"
    _provider = TracerProvider(resource=Resource.create({"service.name": name}),
                               sampler=ParentBased(root=EntryPointsOnly()))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    RequestsInstrumentor().instrument(tracer_provider=_provider)
    RedisInstrumentor().instrument(tracer_provider=_provider)
    if importlib.util.find_spec("psycopg") is not None:  # the knowledge extra
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor  # imports psycopg: only when installed

        PsycopgInstrumentor().instrument(tracer_provider=_provider)


def flush() -> None:
    if _provider is not None:
        _provider.force_flush(5_000)


def inject(options: dict[str, Any]) -> None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:
        options[TRACE_OPTION] = carrier


def _tracer():
    return trace.get_tracer(TRACER)


# -- the API ------------------------------------------------------------------------------------

class _HeaderGetter(Getter):
    def get(self, carrier, key: str) -> Optional[list[str]]:
        value = carrier.get_header(key)
        return [value] if value is not None else None

    def keys(self, carrier) -> list[str]:
        return []


_HEADERS = _HeaderGetter()


class RequestTracing:
    """Falcon middleware: one SERVER span per request, continuing the caller's ``traceparent``.

    The span is current while the responder runs, so engine calls (in the
    thread pool, which copies the context) and the submitted message belong
    to it. Named by the route template (``GET /api/v1/tasks/status/{task_id}``),
    not the path, so a trace backend groups requests by endpoint.
    """

    async def process_request(self, req, resp) -> None:
        parent = propagate.extract(req, getter=_HEADERS)
        span = _tracer().start_span(f"{req.method} {req.path}", context=parent, kind=SpanKind.SERVER, attributes={
            "http.request.method": req.method, "url.path": req.path, "url.scheme": req.scheme,
        })
        rid = logs.request_id()
        if rid:
            span.set_attribute("claw.request_id", rid)
        req.context.trace_span = span
        req.context.trace_token = context.attach(trace.set_span_in_context(span))

    async def process_resource(self, req, resp, resource, params) -> None:
        span = getattr(req.context, "trace_span", None)
        if span is not None and req.uri_template:
            span.update_name(f"{req.method} {req.uri_template}")
            span.set_attribute("http.route", req.uri_template)

    async def process_response(self, req, resp, resource, req_succeeded: bool) -> None:
        span = getattr(req.context, "trace_span", None)
        if span is None:
            return
        status = int(resp.status_code if hasattr(resp, "status_code") else str(resp.status).split()[0])
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        context.detach(req.context.trace_token)


# -- the worker ---------------------------------------------------------------------------------

_SPAN = "_claw_trace_span"


class TaskTracing(Middleware):
    """One CONSUMER span per task run, child of the context the message carries.

    It stands right after TaskState (see :func:`pipeline.broker.engine_middleware`):
    it opens a span only for a delivery that runs, and its after-hook runs
    after RetryPolicy's, so the span's ``claw.outcome`` is what the record says
    (SUCCESS, RETRY, FAILURE, CANCELLED).
    """

    def before_process_message(self, broker, message) -> None:
        delivery = delivery_of(message)
        parent = propagate.extract(message.options.get(TRACE_OPTION) or {})
        span = _tracer().start_span(f"run {message.actor_name}", context=parent, kind=SpanKind.CONSUMER, attributes={
            "messaging.system": "rabbitmq",
            "messaging.destination.name": message.queue_name,
            "messaging.message.id": message.message_id,
            "claw.task_id": message.message_id,
            "claw.actor": message.actor_name,
            "claw.attempt": delivery.attempt if delivery else 0,
        })
        rid = logs.request_id()
        if rid:
            span.set_attribute("claw.request_id", rid)
        token = context.attach(trace.set_span_in_context(span))
        setattr(message, _SPAN, (span, token))

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        started = getattr(message, _SPAN, None)
        if started is None:
            return
        span, token = started
        delattr(message, _SPAN)
        outcome = "SUCCESS" if exception is None else delivery_of(message).outcome
        span.set_attribute("claw.outcome", outcome)
        if exception is not None:
            span.record_exception(exception)
            if outcome == "FAILURE":
                span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        context.detach(token)

    def after_skip_message(self, broker, message) -> None:
        started = getattr(message, _SPAN, None)
        if started is not None:
            started[0].set_attribute("claw.outcome", "SKIPPED")
            started[0].end()
            context.detach(started[1])
            delattr(message, _SPAN)
