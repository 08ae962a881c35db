"""The browser console: `GET /console`, one static page (console.html) that calls through the kiosk stream door.

The page is public (it holds no data); the stream it opens still needs the API key, which the page
passes on from its own `?key=`.
"""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web

PATH = "/console"


@functools.cache
def page() -> bytes:
    return resources.files("adapter.doors").joinpath("console.html").read_bytes()


async def console(request: web.Request) -> web.Response:
    return web.Response(body=page(), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, console)
