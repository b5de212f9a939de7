"""Configuration: mappings, files, the environment and code enter, a validated ``MonitoringConfig`` leaves.

- ``model``: the config model and its one parser; ``exporters``, ``alerts`` and ``auth``: its
  entries and sections, each class validated as it is constructed.
- ``checks``: the value checks the model's fields use; ``fields``: how fields declare them, the
  resolver that runs them and the file reader; ``style``: key styles, units and the plugin's
  wrappers.
- ``sources``: argument > environment > file > default; ``env``: the environment variables.
- ``reference``: docs/configuration.md and the check-config report, generated from the model.
"""
