"""The shared fixtures, as plugins under tests/fixtures/ (one module per thing a test needs).

tests/unit/ needs no service; tests/integration/ runs against the real services (see
`tests.fixtures.services`). Every test that uses the ``services`` fixture is marked
``integration``, so ``pytest -m "not integration"`` is the offline loop, and every other test
runs without etl's environment variables (`tests.fixtures.environ`).
"""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.environ",
    "tests.fixtures.db",
    "tests.fixtures.kafka",
    "tests.fixtures.etl_env",
]
