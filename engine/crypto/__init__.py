"""Crypto for platform profiles: SM2/SM3/SM4, AES, RSA, signers, digital envelopes, anti-replay.

Primitives are sans-I/O (bytes in, bytes out) and raise a specific `errors.CryptoError`:
`sm3`, `sm4`, `aes`, `rsa`, `sm2` (backend interface: libcrypto via ctypes, gmssl fallback),
`keys` (SM2 key parsing), `signer` (canonical-string digests), `replay`, `secrets`.
`profile.CryptoProfile` is the platform.yaml `crypto:` schema; `envelope.compile_profile`
turns it into a `CompiledProfile` with seal/open methods for the runtime and the twins.
"""
