"""The dashboard's one stylesheet and one script, served without a session.

Only the files named here are served (no path from the URL ever reaches
the filesystem). Pages link them with a content hash (``?v=``), so they can
be cached for a day and still change with a deploy.
"""

from __future__ import annotations

import hashlib

import falcon

from api.dashboard.templating import STATIC_DIR
from api.dashboard.web import Resource, secure_headers
from api.errors import ApiError

FILES = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"}


class StaticResource(Resource):
    def __init__(self, dashboard):
        super().__init__(dashboard)
        self.files = {name: (STATIC_DIR / name).read_bytes() for name in FILES}
        self.etags = {name: hashlib.sha256(body).hexdigest()[:16] for name, body in self.files.items()}

    async def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in FILES:
            raise ApiError(404, "Not Found", f"no dashboard file {name!r}")
        secure_headers(resp)
        resp.etag = self.etags[name]
        resp.cache_control = ["public", "max-age=86400"]
        if req.if_none_match and any(tag == self.etags[name] for tag in req.if_none_match):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = FILES[name]
        resp.data = self.files[name]
