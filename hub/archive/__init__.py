"""The conversation archive (会话存档): durable storage of every message, history and export."""
