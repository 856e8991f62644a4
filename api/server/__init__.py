"""How ``claw-pipeline api`` serves the app: gunicorn supervising uvicorn workers.

* :mod:`api.server.gunicorn_conf` — the gunicorn settings (shipped in the package).
* :mod:`api.server.worker` — the worker class: uvicorn on uvloop with our protocol.
* :mod:`api.server.protocol` — header and body read time-outs, keep-alive limits.
* :mod:`api.server.asgi` — the ASGI entry point: the app plus the access log and
  the client-gone signal that open streams need.
"""
