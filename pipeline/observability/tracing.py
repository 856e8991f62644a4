"""OpenTelemetry traces, on only when an OTLP endpoint is configured.

Set ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
and install the ``[tracing]`` extra; every process then exports spans with
OTLP over HTTP (the SDK reads the standard ``OTEL_*`` variables: headers,
service name, batch delay):

* the API: a span per request, continuing a caller's ``traceparent``;
* the message: the submitting context travels in the message's options
  (``trace``), so the worker's span continues the request's trace;
* the worker: a span per task run (actor, queue, attempt, outcome);
* Redis, PostgreSQL and outbound HTTP (``requests``: the LLM, webhooks, push,
  SMS) as child spans, from the standard instrumentations.

Off (no endpoint), this module is all the engine touches: it imports nothing
of OpenTelemetry, the API and the worker get no tracing middleware, and a
submission pays one ``is None`` check. :mod:`pipeline.observability.otel`
holds everything that needs the SDK.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Optional

from pipeline.errors import ConfigError

EXTRA_MISSING = 'OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: pip install "claw-pipeline[tracing]"'

#: The SDK side (pipeline.observability.otel) once tracing is on in this process.
_otel: Optional[Any] = None


def configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def enabled() -> bool:
    return _otel is not None


def check() -> None:
    """ConfigError when tracing is configured but the extra is missing (at start, before any process forks)."""
    if configured() and importlib.util.find_spec("opentelemetry.sdk") is None:
        raise ConfigError(EXTRA_MISSING)


def setup(service: str) -> bool:
    """Start tracing in this process when configured (once); returns whether it is on.

    *service* names the process kind (api, worker, scheduler) in
    ``service.name`` unless ``OTEL_SERVICE_NAME`` is set.
    """
    global _otel
    if _otel is None and configured():
        try:
            from pipeline.observability import otel  # the [tracing] extra: imported only when tracing is on
        except ImportError:
            raise ConfigError(EXTRA_MISSING) from None
        otel.start(service)
        _otel = otel
    return _otel is not None


def shutdown() -> None:
    """Export what is buffered (a worker process leaves with os._exit, which skips atexit)."""
    if _otel is not None:
        _otel.flush()


def inject(options: dict[str, Any]) -> None:
    """Put the current trace context in a message's *options* (nothing when tracing is off)."""
    if _otel is not None:
        _otel.inject(options)


def worker_middleware() -> list[Any]:
    """The task-run span middleware, or nothing when tracing is off."""
    return [_otel.TaskTracing()] if _otel is not None else []


def api_middleware() -> list[Any]:
    """The request span middleware, or nothing when tracing is off."""
    return [_otel.RequestTracing()] if _otel is not None else []
