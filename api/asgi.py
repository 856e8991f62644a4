"""The ASGI application object for servers: ``api.asgi:app`` (see :mod:`api.server`).

Importing this module builds the app; each worker process does, after the
fork, so no connection is ever shared between processes.
"""

from api.app import create_app
from api.server.asgi import ServedApp
from pipeline.console import setup_logging
from pipeline.settings import get_settings

setup_logging(get_settings())

app = ServedApp(create_app())
