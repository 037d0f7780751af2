"""Casework: what happens on a case once it exists. Working days and the deadlines they
count (`workdays`, `deadlines`), where a case goes (`routing`), the desk that records
messages and queues mail for a mailbox (`desk`), correspondence on a case (follow-ups,
staff replies, relays: `correspondence`), the staff commands as one table (`commands`),
escalation requests (`escalation`), pseudonyms (`pseudonyms`) and the daily reminders
(`reminders`). Decisions are pure functions; writes go through `models` in the caller's
transaction."""
