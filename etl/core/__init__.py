"""The pure middle: configuration models, message decoding, planning a run, the ports, errors,
and SQL statements and migrations as data.

May import: the standard library, orjson, and the two pure parts of psycopg (``psycopg.sql`` to
compose statements, ``psycopg.conninfo`` to parse a DSN). Never a client library that talks to a
service (confluent_kafka, psycopg connections, prometheus_client), nor any other etl layer.
"""
