"""The example platform profiles compile and work end to end (client seals, platform opens, and back)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crsa

import engine.crypto
from engine.crypto.envelope import CompiledProfile, compile_profile, load_profile_yaml
from engine.crypto.errors import (
    BadSignatureError,
    CryptoConfigError,
    KeyUnwrapError,
    MissingSignatureError,
    PaddingError,
    ReplayedNonceError,
    SecretError,
    StaleTimestampError,
)
from engine.crypto.keys import generate_sm2_private_key
from engine.crypto.profile import CryptoProfile
from engine.crypto.sm2 import sm2_decrypt

PROFILES = Path(engine.crypto.__file__).parent / "profiles"
PLATFORM_SM2 = generate_sm2_private_key()
CLIENT_SM2 = generate_sm2_private_key()
STRANGER_SM2 = generate_sm2_private_key()
RSA = crsa.generate_private_key(65537, 2048)
RSA_PRIV_PEM = RSA.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
# Java-style bare base64 X.509 public key, as platforms distribute it.
RSA_PUB_B64 = base64.b64encode(
    RSA.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def secrets_for(platform: str) -> dict[str, str | bytes]:
    return {
        "city_lab_mr_password": "HealthOne",
        "city_lab_mr_platform_sm2_public": PLATFORM_SM2.public_key.to_hex(),
        "city_lab_mr_platform_sm2_private": PLATFORM_SM2.to_pem(),
        "city_lab_mr_client_sm2_private": CLIENT_SM2.to_hex(),
        "city_lab_mr_client_sm2_public": CLIENT_SM2.public_key.to_pem(),
        "city_lab_mr_platform_rsa_public": RSA_PUB_B64,
        "city_lab_mr_platform_rsa_private": RSA_PRIV_PEM,
        "xinjiang_mr_platform_sm2_public": base64.b64encode(PLATFORM_SM2.public_key.uncompressed()).decode(),
        "xinjiang_mr_platform_sm2_private": PLATFORM_SM2.to_hex(),
        "jilin_imaging_sm2_public": PLATFORM_SM2.public_key.to_hex(prefix=False),
        "jilin_imaging_sm2_private": PLATFORM_SM2.to_pem(),
        "wedoctor_supervision_app_key": "s3cr3t-app-key",
    }


def load(name: str) -> CryptoProfile:
    return load_profile_yaml((PROFILES / f"{name}.yaml").read_text(encoding="utf-8"))


def pair(name: str) -> tuple[CompiledProfile, CompiledProfile]:
    """(client, platform) compiled from the same profile; each only gets the secrets its role holds."""
    p = load(name)
    s = secrets_for(name)
    client = compile_profile(p, {k: v for k, v in s.items() if "platform_sm2_private" not in k and "rsa_private" not in k})
    platform = compile_profile(p, s, role="platform")
    return client, platform


def test_every_example_profile_decodes() -> None:
    names = sorted(f.stem for f in PROFILES.glob("*.yaml"))
    assert {"city_lab_mr", "city_lab_mr.model_b", "xinjiang_mr", "jilin_imaging", "wedoctor_supervision"} <= set(names)
    for n in names:
        p = load(n)
        assert p.note and not p.verified
        compile_profile(p, secrets_for(n), role="both")


def test_unknown_setting_rejected() -> None:
    with pytest.raises(CryptoConfigError, match="chiper"):
        load_profile_yaml("crypto:\n  envelope:\n    chiper: sm4-ecb\n")


def test_no_platform_names_in_engine_code() -> None:
    """Platforms differ only by profile settings: no platform id anywhere in engine/crypto's Python."""
    ids = ["city_lab_mr", "xinjiang", "jilin", "wedoctor", "pe_system", "neusoft", "healthone", "myhealth"]
    for f in Path(engine.crypto.__file__).parent.rglob("*.py"):
        text = f.read_text(encoding="utf-8").lower()
        for pid in ids:
            assert pid not in text, f"{f.name} mentions {pid}"


# --- city_lab_mr ----------------------------------------------------------------------------

CITY_BODY = b'{"messages":{}}'
# notes/000 §4.3 candidate ciphertexts of {"messages":{}} for each reading of Sha256(...).substring(0, 32).
CITY_CANDIDATES = {
    "K1": ({"cipher": "aes-cbc"}, {"key_bytes": "ascii"}, "gRCZPddErEyRnq1PSMh5bA=="),
    "K2": ({"cipher": "aes-cbc"}, {"key_bytes": "hex"}, "6zeDEuiHPKj9BnIT3FMHFQ=="),
    "K3": ({}, {"key_bytes": "hex"}, "yiHCvTr5/QdZABzVTGgEkQ=="),
    "K4": ({}, {"key_bytes": "ascii", "cut": 16}, "FNLN37yiYUZZXvN6YFeDZg=="),
}


@pytest.mark.parametrize("cand", sorted(CITY_CANDIDATES))
def test_city_key_derivation_candidates(cand: str) -> None:
    env_over, key_over, expected = CITY_CANDIDATES[cand]
    p = load("city_lab_mr")
    assert p.envelope is not None
    env = msgspec.structs.replace(p.envelope, key=msgspec.structs.replace(p.envelope.key, **key_over), **env_over)
    if env.cipher.startswith("aes"):
        env = msgspec.structs.replace(env, wrap=msgspec.structs.replace(env.wrap, key_text="raw"))
    cp = compile_profile(msgspec.structs.replace(p, envelope=env), secrets_for("city_lab_mr"), role="both")
    sealed = cp.seal_request(CITY_BODY, {"secrettype": "1"})
    assert sealed.body.decode() == expected
    assert cp.open_request(sealed.body, sealed.headers).body == CITY_BODY


def test_city_model_a_round_trip() -> None:
    client, platform = pair("city_lab_mr")
    sealed = client.seal_request(CITY_BODY, {"secrettype": "1", "access_token": "t"})
    assert sealed.body.decode() == "yiHCvTr5/QdZABzVTGgEkQ=="
    wrapped = base64.b64decode(sealed.headers["secretkey"])
    assert wrapped[0] == 4  # C1C3C2 with the 04 prefix
    assert sm2_decrypt(PLATFORM_SM2, wrapped) == hashlib.sha256(b"HealthOne").hexdigest()[:32].encode()
    opened = platform.open_request(sealed.body, sealed.headers)
    assert opened.body == CITY_BODY
    resp = platform.seal_response(b'{"code":"0"}', session=opened.session)
    assert client.open_response(resp.body, resp.headers, session=sealed.session).body == b'{"code":"0"}'


def test_city_model_b_round_trip_and_wrong_key() -> None:
    client, platform = pair("city_lab_mr.model_b")
    body = json.dumps({"messages": {"EVN": {"businessId": "42"}}}, ensure_ascii=False).encode()
    sealed = client.seal_request(body)
    key = RSA.decrypt(base64.b64decode(sealed.headers["secretkey"]), padding.PKCS1v15())
    assert len(key) == 32 and key.isalnum()
    opened = platform.open_request(sealed.body, sealed.headers)
    assert opened.body == body
    # A secretkey wrapped for another key pair: a key-unwrap error, not garbage.
    other = crsa.generate_private_key(65537, 2048)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    wrong = compile_profile(
        load("city_lab_mr.model_b"), {**secrets_for("x"), "city_lab_mr_platform_rsa_private": other_pem}, role="platform"
    )
    with pytest.raises(KeyUnwrapError):
        wrong.open_request(sealed.body, sealed.headers)


def test_city_generic_header_signature_and_replay() -> None:
    client, platform = pair("city_lab_mr.generic_header")
    now = 1_700_000_000.0
    sealed = client.seal_request(CITY_BODY, {"signtype": "1", "secrettype": "1"}, now=now)
    for h in ("sign", "RAtimestamp", "RAnonce", "RAsignature", "secretkey"):
        assert sealed.headers[h]
    assert sealed.headers["RAtimestamp"] == str(int(now * 1000))
    assert platform.open_request(sealed.body, sealed.headers, now=now + 5).body == CITY_BODY
    with pytest.raises(ReplayedNonceError):
        platform.open_request(sealed.body, sealed.headers, now=now + 6)
    fresh = client.seal_request(CITY_BODY, now=now)
    with pytest.raises(StaleTimestampError):
        platform.open_request(fresh.body, fresh.headers, now=now + 901)
    # Altered RAsignature, or a body signed by someone else: bad signature.
    fresh = client.seal_request(CITY_BODY, now=now)
    with pytest.raises(BadSignatureError):
        platform.open_request(fresh.body, {**fresh.headers, "RAsignature": "0" * 64}, now=now)
    fresh = client.seal_request(CITY_BODY, now=now)
    with pytest.raises(MissingSignatureError):
        platform.open_request(fresh.body, {k: v for k, v in fresh.headers.items() if k != "sign"}, now=now)


def test_tampered_envelope_never_yields_plaintext() -> None:
    """Flip the first CBC block of a signed envelope: padding still parses, the signature catches it."""
    client, platform = pair("city_lab_mr.generic_header")
    body = b'{"messages":{"data":"' + b"x" * 100 + b'"}}'
    sealed = client.seal_request(body)
    raw = bytearray(base64.b64decode(sealed.body))
    raw[0] ^= 1
    with pytest.raises(BadSignatureError):
        platform.open_request(base64.b64encode(bytes(raw)), sealed.headers)
    # Without a signature, a flipped last block is a padding error (fixed key: deterministic).
    plain_client, plain_platform = pair("city_lab_mr")
    sealed = plain_client.seal_request(CITY_BODY)
    raw = bytearray(base64.b64decode(sealed.body))
    raw[-1] ^= 1
    with pytest.raises(PaddingError):
        plain_platform.open_request(base64.b64encode(bytes(raw)), sealed.headers)


# --- xinjiang_mr ----------------------------------------------------------------------------

CREDENTIAL = '<root><org code="457759922">昌吉市人民医院</org><visitor type="0" code="user01" key="pass01"></visitor></root>'
FILTER = "<root><id_no>650102199001011234</id_no><id_type>01</id_type></root>"


def test_xinjiang_round_trip() -> None:
    client, platform = pair("xinjiang_mr")
    sealed = client.seal_request(params={"strFilter": FILTER, "strCredential": CREDENTIAL})
    assert set(sealed.params) == {"strFilter", "strCredential", "strKey"}
    assert FILTER not in sealed.params["strFilter"]
    key = sm2_decrypt(PLATFORM_SM2, base64.b64decode(sealed.params["strKey"]))
    assert len(key) == 16
    opened = platform.open_request(params=sealed.params)
    assert opened.params["strFilter"] == FILTER and opened.params["strCredential"] == CREDENTIAL
    # Query answers are encrypted with the caller's key; ok / error: pass through in plain text.
    answer = b"<root><item id_no='x'/></root>"
    resp = platform.seal_response(answer, session=opened.session)
    assert resp.body != answer
    assert client.open_response(resp.body, session=sealed.session).body == answer
    for plain in (b"ok", "error:参数错误".encode()):
        assert platform.seal_response(plain, session=opened.session).body == plain
        assert client.open_response(plain, session=sealed.session).body == plain


def test_xinjiang_fixed_key_matches_notes_vector() -> None:
    p = load("xinjiang_mr")
    assert p.envelope is not None
    key = msgspec.structs.replace(p.envelope.key, source="secret", value={"secret": "k"}, key_bytes="hex")  # type: ignore[arg-type]
    p = msgspec.structs.replace(p, envelope=msgspec.structs.replace(p.envelope, key=msgspec.convert(msgspec.to_builtins(key), type(key))))
    cp = compile_profile(p, {**secrets_for("xinjiang_mr"), "k": bytes(range(16)).hex()}, role="both")
    sealed = cp.seal_request(params={"strFilter": FILTER})
    assert sealed.params["strFilter"] == (
        "GHQhlTmJpRIK9QY7qql6tLfEu81VirxjuvFfeQanpBlF7IQuG6TSUJRm+2X+LqTYZ8kUD1KoHYzBBBS0ePXhWpaxshYFbl6H3IW57X2tKgg="
    )


def test_xinjiang_wrong_platform_key_is_unwrap_error() -> None:
    client, _ = pair("xinjiang_mr")
    stranger = compile_profile(
        load("xinjiang_mr"), {**secrets_for("x"), "xinjiang_mr_platform_sm2_private": STRANGER_SM2.to_hex()}, role="platform"
    )
    sealed = client.seal_request(params={"strFilter": FILTER, "strCredential": CREDENTIAL})
    with pytest.raises(KeyUnwrapError) as e:
        stranger.open_request(params=sealed.params)
    assert "pass01" not in str(e.value) and STRANGER_SM2.to_hex() not in str(e.value)


# --- jilin_imaging --------------------------------------------------------------------------


def test_jilin_field_encryption() -> None:
    client, platform = pair("jilin_imaging")
    assert client.encrypted_fields == {"idCardNo"}
    doc = {
        "hospitalCode": "HSX00923",
        "idCardNo": "22010219900101123X",
        "list": [{"idCardNo": "220102199001011234"}],
        "empty": {"idCardNo": ""},
    }
    enc = client.encrypt_fields(doc)
    assert enc["hospitalCode"] == "HSX00923" and enc["empty"]["idCardNo"] == ""
    raw = base64.b64decode(enc["idCardNo"])
    assert raw[0] == 4 and len(raw) == 65 + 32 + 18
    assert platform.decrypt_fields(enc) == doc
    with pytest.raises(CryptoConfigError):
        client.encrypt_field("patientName", "x")


# --- wedoctor_supervision -------------------------------------------------------------------


def test_wedoctor_configurable_signer() -> None:
    client, platform = pair("wedoctor_supervision")
    data = json.dumps([{"hospId": "H1", "hospName": "医院"}], ensure_ascii=False)
    body = json.dumps({"uptime": "2024-01-01 08:00:00", "data": data}, ensure_ascii=False).encode()
    sealed = client.seal_request(body, {"service": "A1000", "appid": "app01"})
    rnd = sealed.headers["randomstr"]
    assert re.fullmatch(r"[0-9a-f]{32}", rnd)
    expected = hashlib.md5(("app01" + rnd + data + "s3cr3t-app-key").encode()).hexdigest().upper()
    assert sealed.headers["sign"] == expected
    assert sealed.body == body  # signing never alters the body
    platform.open_request(sealed.body, sealed.headers)
    platform.open_request(sealed.body, sealed.headers)  # no uniqueness promised: not remembered
    tampered = body.replace(b"H1", b"H2")
    with pytest.raises(BadSignatureError):
        platform.open_request(tampered, sealed.headers)
    # A0001: data is the empty string.
    a0001 = client.seal_request(b'{"uptime":"2024-01-01 08:00:00","data":""}', {"appid": "app01"})
    assert a0001.headers["sign"] == hashlib.md5(("app01" + a0001.headers["randomstr"] + "s3cr3t-app-key").encode()).hexdigest().upper()


def test_wedoctor_sorted_hmac_variant() -> None:
    p = load_profile_yaml(
        """
signature:
  algorithm: hmac-sha256
  inputs: [{name: service, from: header}, {name: appid, from: header}, {name: uptime, from: json}, {name: data, from: json}]
  sort: name
  pair: name=value
  joiner: "&"
  key: {secret: k}
  key_placement: hmac
  output: base64
  carry: {in: header, name: sign}
"""
    )
    cp = compile_profile(p, {"k": "key"}, role="both")
    sealed = cp.seal_request(b'{"uptime":"u","data":"d"}', {"service": "A1000", "appid": "a"})
    import hmac as _hmac

    expected = base64.b64encode(_hmac.new(b"key", b"appid=a&data=d&service=A1000&uptime=u", "sha256").digest()).decode()
    assert sealed.headers["sign"] == expected
    cp.open_request(sealed.body, sealed.headers)


# --- configuration errors -------------------------------------------------------------------


def test_missing_secret_is_named_not_leaked() -> None:
    s = secrets_for("jilin_imaging")
    del s["jilin_imaging_sm2_public"]
    with pytest.raises(SecretError, match="jilin_imaging_sm2_public"):
        compile_profile(load("jilin_imaging"), s)
    # The platform side does not need the public key.
    compile_profile(load("jilin_imaging"), s, role="platform")


def test_bad_settings_rejected() -> None:
    with pytest.raises(CryptoConfigError, match="fixed IV"):
        compile_profile(
            load_profile_yaml(
                "envelope: {cipher: aes-gcm, key: {source: secret, value: {secret: k}, key_bytes: hex},"
                " iv: {source: fixed, text: abcdefabcdef}}"
            ),
            {"k": "00" * 16},
        )
    with pytest.raises(CryptoConfigError, match="wrong size"):
        compile_profile(
            load_profile_yaml("envelope: {cipher: sm4-ecb, key: {length: 32}, wrap: {algorithm: sm2, carry: {in: header, name: k}}}"),
            {},
            role="platform",
        )
    city = load("city_lab_mr")
    assert city.envelope is not None
    ascii_key = msgspec.structs.replace(city.envelope.key, key_bytes="ascii")  # 32 ASCII bytes: too long for SM4
    with pytest.raises(CryptoConfigError, match="need 16"):
        compile_profile(
            msgspec.structs.replace(city, envelope=msgspec.structs.replace(city.envelope, key=ascii_key)), secrets_for("city_lab_mr")
        )
