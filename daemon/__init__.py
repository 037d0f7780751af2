"""The Candour daemon: the application that uses every other package.

`config` reads the TOML file into typed values; `mail` is mail as data (pure); `casework`
is what happens on a case; `triage` turns a fetched message into a case through the
pipeline; `mailbox` talks IMAP and runs the preparer processes; `service` is the running
worker and its scheduler; `cli` is every `candour` command. Nothing outside the daemon
imports it: replies, classifiers and models are below it (tests/test_structure.py).
"""
