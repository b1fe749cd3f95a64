"""etl: a batch job that drains a Kafka topic of cluster-analysis reports into PostgreSQL."""
