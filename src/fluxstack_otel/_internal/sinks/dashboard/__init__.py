"""The built-in dashboard: the stream enters, a page and its JSON document leave.

``sink`` serves the page, its assets (``static/``) and ``data.json``; ``history`` is the ring of
per-interval points the sink samples every step, which ``data.json`` carries to the page.
"""
