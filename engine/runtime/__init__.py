"""The bridge runtime: sources into the journal, the journal out to targets (see bridge.py)."""
