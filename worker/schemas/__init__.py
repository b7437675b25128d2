"""Marshmallow schemas, one module per Zenoti resource, loading into frozen dataclass records."""
