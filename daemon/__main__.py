"""`python -m daemon` is the `candour` command."""

from daemon.cli import main

main()
