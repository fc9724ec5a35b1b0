"""Service sessions: a conversation that needs a human, from the queue to a close."""
