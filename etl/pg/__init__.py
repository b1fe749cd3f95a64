"""The PostgreSQL adapter: the sink, the runs ledger, schema administration, cleanup.

Everything in etl that opens a psycopg connection lives here, and psycopg errors become
`etl.core.errors` exceptions here. May import `etl.core`; never `etl.kafka`, `etl.pipeline` or
the CLI.
"""
