"""Triage: from a message fetched from IMAP to a case. `pipeline` lists the stages in
order and runs them; the pure stages (parse, automatic mail, classify) are in `prepare`,
the threading keys and case lookup in `threading`, the intake decision for a new sender in
`intake` and applying it (the new case, its automatic reply, staff copies) in `opening`."""
