"""Tests against the real Kafka, PostgreSQL and Pushgateway (the shared ones, or private instances
a test may kill), and runs of the `etl` command against them."""
