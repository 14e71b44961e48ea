"""Spec unit tests (`specbridge test`): mapping and validation tests written in YAML next to the specs."""
