"""Mail as data: a message as fetched (`values.RawMessage`), parsed into typed fields
(`parse`), and whether a machine wrote it (`automatic`). Pure functions on bytes and values:
no database, no network. The outcomes the watcher maps to IMAP keywords live here too
(`values.Outcome`, `values.Result`), since every stage above speaks them."""
