"""The pipeline of one delivery: drain, envelope, handlers, batch write, store."""
