"""``python -m etl`` is the ``etl`` command."""

from etl.cli.app import main

main()
