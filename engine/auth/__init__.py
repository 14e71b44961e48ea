"""Token managers for platforms that issue access tokens (see `tokens.TokenManager`)."""

from engine.auth.kv import KV, FileKV, MemoryKV
from engine.auth.tokens import AuthError, BadCredentials, CredentialsRejected, TokenCapReached, TokenManager

__all__ = [
    "KV",
    "AuthError",
    "BadCredentials",
    "CredentialsRejected",
    "FileKV",
    "MemoryKV",
    "TokenCapReached",
    "TokenManager",
]
