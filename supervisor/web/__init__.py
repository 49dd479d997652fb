"""The dashboard's static files, shipped as package data and served by ``supervisor.http``.

Decisions:

* Plain files (HTML, vanilla JS, CSS) with no build step and nothing fetched from the internet:
  the page works on an offline machine and an installed package serves the same bytes as a
  checkout (``[tool.setuptools.package-data]`` lists them).
* Read once, when the HTTP app is built, and kept in memory: a few kilobytes, and no file I/O
  on the event loop per request.
* Only the names in ``ASSETS`` are served: a request can never name another file.
"""

from __future__ import annotations

import functools
from importlib.resources import files

import attrs

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "plot.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
INDEX = "index.html"


@attrs.frozen
class Asset:
    body: bytes
    content_type: str


@functools.cache
def asset(name: str) -> Asset:
    """The file ``name`` of ``ASSETS``; ``KeyError`` for any other name."""
    content_type = ASSETS[name]
    return Asset(files(__name__).joinpath(name).read_bytes(), content_type)
