"""The API app with the dashboard mounted, for the gunicorn the browser tests start.

It is ``api.wsgi`` plus ``extra_routes=dashboard_routes(...)``: the engine
comes from the environment on first use, as in production.
"""

from api.app import create_app
from api.dashboard import dashboard_routes
from pipeline.engine import get_engine

app = create_app(extra_routes=dashboard_routes(get_engine))
