"""`python -m daemon` is the `candour` command."""

from daemon.cli.main import main

main()
