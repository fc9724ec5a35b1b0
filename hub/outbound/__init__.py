"""Outbound: platform API client with an access-token cache, and the persistent send queue."""
