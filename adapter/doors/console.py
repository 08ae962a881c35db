"""The browser console: `GET /console`, one static page (console.html) that calls through the kiosk stream door;
and the front door a new user opens first, `GET /`, which points to it and to the docs.

The pages are public (they hold no data); the stream the console opens still needs the API key, which the
page passes on from its own `?key=`.
"""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web

from adapter import __version__

PATH = "/console"

#: What `GET /` lists for programs (and curl): where everything is.
INDEX = {
    "service": "kore-voice",
    "version": __version__,
    "console": PATH,
    "openapi": "/openapi.json",
    "health": "/healthz",
    "ready": "/readyz",
    "metrics": "/metrics",
    "docs": "README.md of the kore-voice-adapter project; the REST contract is /openapi.json",
}


@functools.cache
def page() -> bytes:
    return resources.files("adapter.doors").joinpath("console.html").read_bytes()


async def console(request: web.Request) -> web.Response:
    return web.Response(body=page(), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def index(request: web.Request) -> web.Response:
    """A browser (it asks for HTML) goes to the console, its `?key=` kept; anything else gets the JSON index."""
    if "text/html" in request.headers.get("Accept", ""):
        where = f"{PATH}?{request.query_string}" if request.query_string else PATH
        return web.Response(status=302, headers={"Location": where})
    return web.json_response(INDEX)


async def favicon(request: web.Request) -> web.Response:
    """Browsers ask every page's host for one; an empty answer keeps 404s out of the access log."""
    return web.Response(status=204, headers={"Cache-Control": "max-age=86400"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get(PATH, console)
    app.router.add_get("/favicon.ico", favicon)
