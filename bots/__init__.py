"""Bots that answer customers before a human: handover words, keyword rules, FAQ answers, welcomes,
business hours. ``bots.pipeline`` is the pipeline step; the rest is pure logic."""
