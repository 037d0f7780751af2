"""The `candour` command line, one module per group of commands: `main` (the group, run,
check-config, db, cases, outbox, quarantine), `deadlines` (deadline, sla), `classifier`
(train, model, evaluate, classify, imported only when used), `corrections` (staff
corrections as training data) and `support` (the --config option, exit codes, failing
well)."""
