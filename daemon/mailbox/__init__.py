"""The mailbox side: the IMAP session (`imap`, the only module that imports imapclient),
the watcher that fetches, hands batches to triage and sets keywords (`watcher`), and the
preparer processes that parse and classify off the daemon's own process (`preparer`)."""
