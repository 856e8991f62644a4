"""The WSGI entry point: ``gunicorn -c infra/gunicorn.conf.py api.wsgi:app``.

Importing this module builds the app (each gunicorn worker does, after the
fork, so no connection is ever shared between processes).
"""

import logging

from api.app import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
logging.getLogger("pika").setLevel(logging.WARNING)

app = create_app()
