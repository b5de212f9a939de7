"""The configuration classes: build a configuration in code, typed and validated as it is built.

    from fluxstack_otel.config import MonitoringConfig, OtlpExporterConfig

    config = MonitoringConfig(
        service_name="shop",
        exporters=(OtlpExporterConfig(endpoint="http://collector:4318/v1/metrics"),),
    )

Every class is a frozen, keyword-only dataclass. Constructing one (or ``dataclasses.replace``)
runs the checks a mapping, a file or the environment meets, so a bad value raises
``ConfigError`` at once, naming the field, the value received and what is allowed. In code,
durations are numbers of seconds. ``load_config`` builds a ``MonitoringConfig`` from a mapping
or a file (docs/configuration.md).
"""

# The model's __all__ is the list of public configuration names: re-exported as it stands, so
# a name added there is public here and in the package without a second list to keep in step.
from fluxstack_otel._internal.config.model import *  # noqa: F403
from fluxstack_otel._internal.config.model import __all__ as __all__
