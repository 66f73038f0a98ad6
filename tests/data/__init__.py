"""Tests of nbroutes/data/: SQLite databases and crud() resources."""
