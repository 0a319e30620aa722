"""Adapters: PostgreSQL event store and read-model storage, Kafka relay and consumers,
embedded PostgreSQL and Kafka launchers, settings."""
