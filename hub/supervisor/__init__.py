"""Supervision: SLA alerts, quality checks, the supervisor dashboard."""
