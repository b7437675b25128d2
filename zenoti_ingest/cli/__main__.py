"""`python -m zenoti_ingest.cli`, the same as the `zenoti-ingest` script."""

from zenoti_ingest.cli import main

main()
