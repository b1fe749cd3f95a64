"""The Kafka adapter: the source of batches, offsets and watermarks, the payload tracker.

Everything in etl that imports confluent_kafka lives here, and librdkafka errors become
`etl.core.errors` exceptions here. May import `etl.core`; never `etl.pg`, `etl.pipeline` or the CLI.
"""
