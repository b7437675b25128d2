-- The named source a delivery came in through (/webhooks/zenoti/@<source>/...); '' is the
-- default source.
ALTER TABLE webhook_events ADD COLUMN source text NOT NULL DEFAULT '';
