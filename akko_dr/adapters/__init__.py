"""Adapters: one per real component behind a port of ``akko_dr.ports``."""
