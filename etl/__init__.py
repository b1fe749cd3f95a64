"""etl: a batch job that drains a Kafka topic of cluster-analysis reports into PostgreSQL.

The layers, arrows pointing down only (``tests/unit/test_layers.py`` enforces them):

    etl.cli          the command line; wires the adapters into the pipeline; nothing imports it
    etl.pipeline     the run loop and its commit order; depends on `etl.core` ports only
    etl.kafka  etl.pg  etl.metrics
                     adapters for Kafka, PostgreSQL and the Pushgateway; each imports only
                     `etl.core`, and is the one place its client library is imported
    etl.core         pure: config, decode, plan, ports, errors, SQL and migrations as data
"""
