"""Alembic migrations of the hub's schema (env.py, versions/); run through hub/schema.py."""
