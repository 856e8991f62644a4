"""What ties a log line or a trace to the request and the task it belongs to.

* :mod:`pipeline.observability.logs` — the request id and the running task's
  id in a context variable, text or JSON log lines (``CLAW_LOG_FORMAT``) that
  carry them, and the one ``setup_logging`` of every process.
* :mod:`pipeline.observability.tracing` — OpenTelemetry, on only when
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the ``[tracing]`` extra): off, the
  engine imports none of it and adds no middleware.
* :mod:`pipeline.observability.message` — what travels in a message's options
  (the request id, the trace context) and the worker middleware that reads it.
"""
