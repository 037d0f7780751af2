"""Fault injection: run the real daemon through crashes and misbehaving peers, then prove
nothing was lost or sent twice.

`runner` drives a run (a seeded backlog and a schedule of faults against `candour run`),
`injectors` are the faults (kill -9, an SMTP peer that refuses, defers, hangs or drops
mid-DATA, a Dovecot restart, PostgreSQL backends terminated), `invariants` checks the
mailbox, the database and what the SMTP peer received afterwards. `make faults` runs the
long form; tests/test_faults.py runs a short one.
"""
