"""The REST API: a Falcon app over :mod:`pipeline.client` (see :func:`api.app.create_app`)."""
