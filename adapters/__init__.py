"""Transports: one module per kind, each with an inbound and an outbound half (see base.py)."""
