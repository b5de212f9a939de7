"""Sinks: the metric stream enters, exports, endpoints, alerts and the dashboard leave.

- ``base``: the sink contract; ``registry``: exporter type -> sink class.
- ``periodic``: the interval worker of the push sinks; ``endpoint_server``: the endpoints on an
  address of their own; ``auth``: the guard of every endpoint.
- ``prometheus/``, ``json_endpoint``, ``console``, ``file``, ``otlp``, ``document``: the exporters.
- ``alerts/``: rules, evaluation, notifiers; ``dashboard/``: the built-in page.
"""
