"""CASSANDRA world models."""
