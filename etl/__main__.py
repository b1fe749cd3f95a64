"""``python -m etl``, and the ``etl`` command's entry point.

Python's cyclic garbage collector is off while the command's modules load, then what they
made is frozen out of its later scans: the imports create no garbage worth finding. That saves
about 3% of the start-up's CPU (`bench/startup.py`, docs/job-cost.md).
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from etl.cli.app import main as command  # noqa: PLC0415 - loaded with the collector off
    finally:
        gc.freeze()
        gc.enable()
    command()


if __name__ == "__main__":
    main()
