"""Crypto throughput, single thread: each primitive per backend, and full digital envelopes.

    .venv/bin/python bench/crypto.py [--seconds 0.5]

Prints a readable table, then one JSON line last (for CI and the README):
{"primitives": {backend: {op: ops/s}}, "envelope": {backend: {outbound, inbound, round_trip}}, ...}

The envelope is the one the design targets: SM4-CBC of a 2 KB JSON body under a fresh
random key and IV, the key SM2-wrapped into a header, an SM2 signature over the body;
inbound verifies, unwraps and decrypts. "round_trip" is one message sealed and opened.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import rsa as crsa

from engine.crypto import aes, rsa, signer, sm4
from engine.crypto import sm3 as sm3_mod
from engine.crypto.envelope import compile_profile, load_profile_yaml
from engine.crypto.keys import generate_sm2_private_key
from engine.crypto.sm2 import BACKEND_NAMES, available_backends, get_backend, sm2_decrypt, sm2_encrypt, sm2_sign, sm2_verify

ENVELOPE_PROFILE = """
sm2_backend: {backend}
envelope:
  cipher: sm4-cbc
  key: {{source: random, length: 16}}
  iv: {{source: random}}
  wrap:
    algorithm: sm2
    public_key: {{secret: platform_pub}}
    private_key: {{secret: platform_priv}}
    carry: {{in: header, name: secretkey}}
  payload: {{target: body, encoding: base64}}
signature:
  algorithm: sm2
  over: plaintext
  private_key: {{secret: client_priv}}
  public_key: {{secret: client_pub}}
  output: base64
  carry: {{in: header, name: sign}}
"""


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn`, timed in batches until `seconds` have passed."""
    fn()  # warm-up (key handles, caches)
    n, batch, start = 0, 1, time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed
        batch = min(batch * 2, 4096)


def body_2k() -> bytes:
    row = {"itemCode": "GLU", "itemName": "葡萄糖", "result": "5.6", "unit": "mmol/L", "range": "3.9-6.1"}
    rows, body = [], b""
    while len(body) < 2048:
        rows.append(row)
        body = json.dumps({"messages": {"labReport": rows}}, ensure_ascii=False).encode()
    return body[:2048]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=0.5, help="measuring time per figure")
    args = ap.parse_args()
    t = args.seconds

    kb = os.urandom(1024)
    key16, iv = os.urandom(16), os.urandom(16)
    msg256 = os.urandom(256)
    sm2_key = generate_sm2_private_key()
    client_key = generate_sm2_private_key()
    reasons = available_backends()
    results: dict[str, dict[str, float]] = {}

    for name in BACKEND_NAMES:
        if reasons[name] is not None:
            print(f"backend {name}: unavailable ({reasons[name]})", file=sys.stderr)
            continue
        b = get_backend(name)
        ct = sm2_encrypt(sm2_key.public_key, key16, backend=b)
        sig = sm2_sign(sm2_key, msg256, backend=b)
        ops: dict[str, Callable[[], object]] = {
            "sm2_sign_256B": lambda b=b: sm2_sign(sm2_key, msg256, backend=b),
            "sm2_verify_256B": lambda b=b, sig=sig: sm2_verify(sm2_key.public_key, msg256, sig, backend=b),
            "sm2_encrypt_16B": lambda b=b: sm2_encrypt(sm2_key.public_key, key16, backend=b),
            "sm2_decrypt_16B": lambda b=b, ct=ct: sm2_decrypt(sm2_key, ct, backend=b),
        }
        if name == "gmssl":
            from gmssl import sm3 as g3
            from gmssl import sm4 as g4

            c = g4.CryptSM4()
            c.set_key(key16, g4.SM4_ENCRYPT)
            ops["sm3_1KB"] = lambda: g3.sm3_hash(list(kb))
            ops["sm4_ecb_1KB"] = lambda c=c: c.crypt_ecb(kb)
            ops["sm4_cbc_1KB"] = lambda c=c: c.crypt_cbc(iv, kb)
        else:
            # The fast stack: SM3 via hashlib/libcrypto, SM4 via cryptography (what the engine uses).
            ops["sm3_1KB"] = lambda: sm3_mod.sm3(kb)
            ops["sm4_ecb_1KB"] = lambda: sm4.sm4_ecb_encrypt(key16, kb)
            ops["sm4_cbc_1KB"] = lambda: sm4.sm4_cbc_encrypt(key16, iv, kb)
        results[name] = {op: round(rate(fn, t), 1) for op, fn in sorted(ops.items())}

    rk = crsa.generate_private_key(65537, 2048)
    rsig = rsa.rsa_sign_sha256(rk, msg256)
    rct = rsa.rsa_encrypt(rk.public_key(), key16)
    aes_key = os.urandom(16)
    nonce = os.urandom(12)
    common: dict[str, Callable[[], object]] = {
        "aes128_cbc_1KB": lambda: aes.aes_cbc_encrypt(aes_key, iv, kb),
        "aes128_ecb_1KB": lambda: aes.aes_ecb_encrypt(aes_key, kb),
        "aes128_gcm_1KB": lambda: aes.aes_gcm_encrypt(aes_key, nonce, kb),
        "rsa2048_sign_sha256": lambda: rsa.rsa_sign_sha256(rk, msg256),
        "rsa2048_verify_sha256": lambda: rsa.rsa_verify_sha256(rk.public_key(), msg256, rsig),
        "rsa2048_wrap_pkcs1v15": lambda: rsa.rsa_encrypt(rk.public_key(), key16),
        "rsa2048_unwrap_pkcs1v15": lambda: rsa.rsa_decrypt(rk, rct),
        "md5_1KB": lambda: signer.digest("md5", kb),
        "sha256_1KB": lambda: signer.digest("sha256", kb),
        "hmac_sha256_1KB": lambda: signer.digest("hmac-sha256", kb, key16),
        "hmac_sm3_1KB": lambda: signer.digest("hmac-sm3", kb, key16),
    }
    results["common"] = {op: round(rate(fn, t), 1) for op, fn in sorted(common.items())}

    body = body_2k()
    secrets = {
        "platform_pub": sm2_key.public_key.to_pem(),
        "platform_priv": sm2_key.to_pem(),
        "client_priv": client_key.to_pem(),
        "client_pub": client_key.public_key.to_pem(),
    }
    envelope: dict[str, dict[str, float]] = {}
    for name in BACKEND_NAMES:
        if reasons[name] is not None:
            continue
        cp = compile_profile(load_profile_yaml(ENVELOPE_PROFILE.format(backend=name)), secrets, role="both")
        sealed = cp.seal_request(body, {"secrettype": "1"})
        assert cp.open_request(sealed.body, sealed.headers).body == body

        def round_trip(cp=cp) -> None:
            s = cp.seal_request(body, {"secrettype": "1"})
            cp.open_request(s.body, s.headers)

        envelope[name] = {
            "outbound": round(rate(lambda cp=cp: cp.seal_request(body, {"secrettype": "1"}), t), 1),
            "inbound": round(rate(lambda cp=cp, s=sealed: cp.open_request(s.body, s.headers), t), 1),
            "round_trip": round(rate(round_trip, t), 1),
        }

    for group, ops_ in results.items():
        print(f"[{group}]")
        for op, v in ops_.items():
            print(f"  {op:<26} {v:>12,.1f} ops/s")
    print("[envelope: SM4-CBC 2 KB + SM2-wrapped key + SM2 signature, messages/s]")
    for name, figs in envelope.items():
        print(f"  {name:<10} " + "  ".join(f"{k} {v:,.1f}" for k, v in figs.items()))

    fast = envelope.get("libcrypto", {}).get("round_trip")
    slow = envelope.get("gmssl", {}).get("round_trip")
    summary = {
        "primitives": results,
        "envelope": envelope,
        "envelope_body_bytes": len(body),
        "fast_backend": "libcrypto" if fast else None,
        "ratio_round_trip_fast_to_gmssl": round(fast / slow, 1) if fast and slow else None,
        "target_round_trip_per_s": 400,
        "meets_target": bool(fast and fast >= 400),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "seconds_per_figure": t,
    }
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
