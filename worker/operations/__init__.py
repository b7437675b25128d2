"""Operator back-ends the CLI calls: dead letters (list, replay, discard), reprocess, rebuild."""
