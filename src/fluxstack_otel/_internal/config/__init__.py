"""Configuration: mappings, files and the environment enter, a validated ``MonitoringConfig`` leaves.

- ``model``: the config model and its one parser; ``exporters`` and ``alerts``: their entries.
- ``checks``: the value checks the model's fields use; ``frozen``: the records' base.
- ``sources``: argument > environment > file > default; ``env``: the environment variables.
- ``reference``: docs/configuration.md and the check-config report, generated from the model.
"""
