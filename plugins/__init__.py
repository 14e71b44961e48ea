"""Platform plugins: what YAML cannot say, discovered through the `specbridge.plugins` entry-point group."""
