"""The browsable page of a door's API document: Swagger UI, served by the door itself so it works offline.

The page and its scripts come from the ``swagger-ui-bundle`` package and are sent from memory,
by a fixed list of names: no part of a request ever names a file. The page loads nothing from
another host (its Content-Security-Policy says so), so it works on a town network with no
Internet and leaks no visit to a CDN.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from swagger_ui_bundle import swagger_ui_path

PAGE_PATH = "/docs"
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
"""Swagger UI styles its elements inline and draws its icons as data: URLs; nothing else is allowed."""


@dataclass(frozen=True)
class Served:
    """One file a door sends as it is."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def page_files(title: str, document_path: str) -> dict[str, Served]:
    """The page at :data:`PAGE_PATH` showing the document at ``document_path`` (relative to the page), and its assets.

    Links are relative, so the page also works behind a proxy that serves the door under a prefix.
    """
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-initializer.js"></script>
</body>
</html>
"""
    initializer = f"""window.ui = SwaggerUIBundle({{
  url: {json.dumps(document_path)},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
}});
"""
    guarded = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff"}
    files = {
        PAGE_PATH: Served(page.encode(), "text/html; charset=utf-8", guarded),
        f"{PAGE_PATH}/swagger-initializer.js": Served(initializer.encode(), "text/javascript; charset=utf-8"),
    }
    for name, content_type in _ASSETS.items():
        files[f"{PAGE_PATH}/{name}"] = Served((swagger_ui_path / name).read_bytes(), content_type)
    return files
