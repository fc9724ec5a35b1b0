"""Full-text archive search (see wiring.py), keyword watches."""
