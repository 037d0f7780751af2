"""The daemon: configuration, mailbox watching, the triage pipeline, the worker loop, the CLI."""
