"""Platform callbacks: one module per platform over a shared crypto/XML core."""
