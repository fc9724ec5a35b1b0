"""Privacy and data protection (PIPL): masking, retention purge, legal holds, erasure, secrets at rest."""
