"""`python -m cli`, the same as the `zenoti-ingest` script."""

from cli.main import main

main()
