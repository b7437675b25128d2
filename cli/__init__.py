"""The composition root: the `zenoti-ingest` command, which may import core, ingress and worker
(nothing imports it). `cli.main:main` is the script."""
