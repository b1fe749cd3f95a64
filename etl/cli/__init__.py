"""The ``etl`` command line: the typer app (`etl.cli.app`), one module per command group, shared
options, rendering, progress, log set-up and the error reports of ``etl run`` to Sentry.

The only layer that wires concrete adapters together, so it may import every other layer;
nothing imports it.
"""
