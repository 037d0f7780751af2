"""The `make demo` walkthrough."""
