"""The running service: the worker that wires configuration to watchers, the outbox sender
and the scheduler, and stops in order on SIGTERM (`worker`); the scheduler and its table of
periodic jobs (`scheduler`); the secret that signs case reply addresses (`secrets`)."""
