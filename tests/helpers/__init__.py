"""What several test modules share: service endpoints, database helpers, running etl."""
