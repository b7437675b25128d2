"""The ingress: a plain WSGI app that appends raw deliveries to a Redis stream and answers 202."""
