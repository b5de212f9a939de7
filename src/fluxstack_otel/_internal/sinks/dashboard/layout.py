"""What the dashboard serves under its path: a leaf module, so the configuration can read it.

The endpoint-path checks of the configuration (``config/endpoints.py``) claim these paths;
the sink (``sink.py``) serves them.
"""

from __future__ import annotations

__all__ = ["ASSETS", "DATA", "SUBPATHS"]

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "quantile.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""The static assets of the page, with their content types."""
DATA = "data.json"
"""The JSON document the page polls."""
SUBPATHS = ("/", *(f"/{name}" for name in ASSETS), f"/{DATA}")
"""What the dashboard serves under its path besides the page (``/`` redirects to the page)."""
