"""Outgoing mail: who Candour writes as (`letterhead`), editable templates, composing the
final bytes with threading and loop-stopping headers (`compose`), whether an automatic
reply may go (`policy`), signed per-case reply addresses (`addresses`), SMTP (`smtp`, the
only module that imports aiosmtplib) and the outbox sender (`deliver`). It imports only
models (the outbox), never the daemon."""
