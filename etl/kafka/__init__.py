"""The Kafka adapter: the source of batches, offsets and watermarks, the payload tracker.

Everything in etl that imports confluent_kafka lives here, and librdkafka errors become
`etl.core.errors` exceptions here. Its bookkeeping (`handout`, `drain`) imports no client: the
adapters around them are shells that ask the broker and carry out what they decide.
May import `etl.core`; never `etl.pg`, `etl.pipeline` or the CLI.
"""
