"""Persistence: tables, engine and transactions, queries, migrations. All SQL lives here."""
