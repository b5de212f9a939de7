"""``python -m fluxstack_otel``: the ``fluxstack-otel`` command."""

from fluxstack_otel._internal.integration.cli import main

raise SystemExit(main())
