"""The ASGI application object for servers: ``api.asgi:app`` (see :mod:`api.server`).

Importing this module builds the app; each worker process does, after the
fork, so no connection is ever shared between processes.
"""

import logging

from api.app import create_app
from api.server.asgi import ServedApp

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
logging.getLogger("pika").setLevel(logging.WARNING)

app = ServedApp(create_app())
