"""Running several hub processes: Redis-shared push, leases and claims across processes, the supervisor."""
