"""The built-in dashboard: the stream enters, a page and its JSON document leave.

``sink`` serves the page, its assets (``static/``) and ``data.json``.
"""
