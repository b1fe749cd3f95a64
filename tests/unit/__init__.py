"""Tests that need no service: pure modules, the CLI and the run loop with fakes of our own ports,
deploy/ and the docs. An autouse fixture clears the ETL_* environment for each."""
