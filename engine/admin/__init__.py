"""The operator surface of a running bridge: Prometheus /metrics, /health and /ready, the
token-protected admin API (/api/...) and the web dashboard on it. See docs/operations.md."""
