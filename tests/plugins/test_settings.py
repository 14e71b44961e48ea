"""A spec's use of an extension is checked like any spec key: names looked up, settings decoded into the
extension's Struct, every mistake a finding at file:line with its key path."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from engine.crypto.errors import BadSignatureError, CryptoConfigError, MissingSignatureError
from engine.crypto.profile import CryptoProfile, compile_profile
from engine.plugins import Plugin, PluginError, Registry, using
from engine.spec import load_specs
from tests.plugins.conftest import edit, line_of

IFACE = "platforms/sample_province/interfaces/uploadClaim.yaml"
PLATFORM = "platforms/sample_province/platform.yaml"


def errors(specs: Path) -> list[str]:
    return [str(f) for f in load_specs(specs, strict=False).errors]


def test_the_fixture_is_clean(with_sample, specs: Path) -> None:
    assert errors(specs) == []


@pytest.mark.parametrize(("old", "new", "needle", "want"), [
    ("settings: {form: basic}", "settings: {form: basix}", "visitDate", "Invalid enum value 'basix' at "
     "request.fields.visitDate.settings.form (settings of plugin `sample` field type `gbt7408_date`"),
    ("settings: {form: basic}", "settings: {fomr: basic}", "visitDate", "unknown key `fomr` at request.fields.visitDate.settings.fomr"),
    ("settings: {region: \"410100\", length: 16}", "settings: {region: \"410100\", length: sixteen}", "length: sixteen",
     "Expected `int`, got `str` at request.fields.cardNo.settings.length"),
    ("{region_prefix: {prefixes: [\"H41\"]}}", "{region_prefix: {}}", "orgCode", "missing required key `prefixes` at "
     "request.fields.orgCode.checks[0].region_prefix (settings of plugin `sample` check `region_prefix`"),
    ("{region_prefix: {prefixes: [\"H41\"]}}", "region_prefix, mobile, {a: {}, b: {}}", "orgCode",
     "a check is a name or a one-key mapping"),
    ("regionCode: {type: string, codes: regions,", "regionCode: {type: string, codes: regions, settings: {x: 1},", "regionCode",
     "`settings` is for plugin field types; `string` takes none"),
])
def test_bad_settings_in_an_interface_are_findings_at_their_line(with_sample, specs: Path, old: str, new: str, needle: str,
                                                                 want: str) -> None:
    path = specs / IFACE
    edit(path, old, new)
    got = errors(specs)
    assert any(e.startswith(f"specs/{IFACE}:{line_of(path, needle)}: ") and want in e for e in got), (want, got)


@pytest.mark.parametrize(("old", "new", "needle", "want"), [
    ('settings: {salt: "sp-2024", output: HEX}', 'settings: {salt: "sp-2024", output: hexx}', "settings: {salt",
     "Invalid enum value 'hexx' at crypto.signature.settings.output (settings of plugin `sample` signer `hmac_sm3_salted`"),
    ("canonical_settings: {joiner: \"&\"}", "canonical_settings: {joiner: \"&\", sort: true}", "canonical_settings",
     "unknown key `sort` at crypto.signature.canonical_settings.sort"),
    ("canonical: sorted_query", "canonical: sorted_qery", "canonical: sorted_qery",
     "unknown canonical-string recipe `sorted_qery`: no installed plugin provides it "
     "(known canonical-string recipes: pairs, sorted_query)"),
    ("algorithm: hmac_sm3_salted", "algorithm: md5", "settings: {salt",
     "signer `md5` takes no `settings`: its options are this signature's own keys"),
    ("algorithm: hmac_sm3_salted", "algorithm: gbt7408_date", "algorithm:",
     "unknown signer `gbt7408_date`: `gbt7408_date` is a field type (plugin `sample`), not a signer"),
])
def test_bad_crypto_extensions_are_findings_at_their_line(with_sample, specs: Path, old: str, new: str, needle: str, want: str) -> None:
    path = specs / PLATFORM
    edit(path, old, new)
    got = errors(specs)
    assert any(e.startswith(f"specs/{PLATFORM}:{line_of(path, needle)}: {want}") for e in got), (want, got)


def test_a_code_table_provider_fills_the_table_and_the_builtin_csv_reads_a_file(with_sample, specs: Path) -> None:
    codes = specs / "platforms/sample_province/codes"
    specset = load_specs(specs)
    assert specset.platforms["sample_province"].codes["regions"][0].values == {"410000": "河南省", "410100": "郑州市", "410200": "开封市"}
    (codes / "regions.csv").write_text("code\tname\n410000\t河南省\n419001\t济源市\n", encoding="utf-8")
    table = 'id: regions\ntitle: t\nprovider: csv\nsettings: {file: regions.csv, delimiter: "\\t", header: true}\n'
    (codes / "regions.yaml").write_text(table, encoding="utf-8")
    got = load_specs(specs, strict=False)
    assert got.platforms["sample_province"].codes["regions"][0].values == {"410000": "河南省", "419001": "济源市"}
    (codes / "regions.yaml").write_text("id: regions\ntitle: t\nprovider: csv\nsettings: {file: nowhere.csv}\n", encoding="utf-8")
    assert any(e.startswith("specs/platforms/sample_province/codes/regions.yaml:3: code table `regions`: FileNotFoundError")
               for e in errors(specs)), errors(specs)


def test_an_envelope_step_seals_and_opens(with_sample) -> None:
    profile = msgspec.convert({"steps": [{"stamp": {"value": "gw-7"}}]}, type=CryptoProfile)
    client, platform = compile_profile(profile, {}), compile_profile(profile, {}, role="platform")
    sealed = client.seal_request(b"{}", {})
    assert sealed.headers["X-Gateway"] == "gw-7"
    assert platform.open_request(sealed.body, sealed.headers).body == b"{}"
    with pytest.raises(MissingSignatureError, match="gateway header X-Gateway"):
        platform.open_request(b"{}", {})
    bad = msgspec.convert({"steps": [{"stamp": {"valu": "x"}}]}, type=CryptoProfile)
    with pytest.raises(CryptoConfigError, match=r"steps\[0\]: unknown key `valu`"):
        compile_profile(bad, {})


def test_registration_is_checked_and_all_or_nothing() -> None:
    class Loose(msgspec.Struct):  # no forbid_unknown_fields: a misspelt setting would pass silently
        x: int = 0

    def sloppy(plugin: Plugin) -> None:
        plugin.check("fine", lambda v, s: None)
        plugin.check("loose", lambda v, s: None, settings=Loose)

    def not_a_signer(plugin: Plugin) -> None:
        plugin.signer("s", object())  # type: ignore[arg-type]

    reg = Registry()
    assert reg.load("sloppy", sloppy).error == ("PluginError: check `loose`: settings Loose must be declared with "
                                                "forbid_unknown_fields=True")
    assert reg.get("check", "fine") is None  # nothing of a plugin that failed half-way is kept
    assert "expected a engine.plugins.seams.Signer" in (reg.load("nosig", not_a_signer).error or "")
    with using(reg):
        from engine.plugins import current

        assert current() is reg
    with pytest.raises(PluginError, match="name 'bad name'"):
        Plugin("p").check("bad name", lambda v, s: None)


def test_a_builtin_signer_over_a_plugin_recipe_and_a_plugin_signer_over_the_builtin_recipe(with_sample) -> None:
    from engine.crypto.sm3 import hmac_sm3

    def profile(**sig: object) -> CryptoProfile:
        base = {"inputs": [{"name": "b", "from": "header"}, {"name": "a", "from": "header"}, {"name": "c", "from": "header"}],
                "key": {"secret": "k"}, "carry": {"in": "header", "name": "sign"}, "output": "hex"}
        return msgspec.convert({"signature": {**base, **sig}}, type=CryptoProfile)

    headers = {"a": "1", "b": "2", "c": ""}
    got = compile_profile(profile(algorithm="hmac-sm3", key_placement="hmac", canonical="sorted_query"), {"k": "key"})
    assert got.seal_request(b"", headers).headers["sign"] == hmac_sm3(b"key", b"a=1&b=2").hex()  # sorted, empty c left out
    got = compile_profile(profile(algorithm="hmac_sm3_salted", settings={"salt": "s", "output": "hex"}, joiner="|"), {"k": "key"})
    assert got.seal_request(b"", headers).headers["sign"] == hmac_sm3(b"key", b"s2|1|").hex()  # `pairs`: inputs in order, values
    platform = compile_profile(profile(algorithm="hmac_sm3_salted", settings={"salt": "s", "output": "hex"}, joiner="|"), {"k": "key"},
                               role="platform")
    sealed = got.seal_request(b"", headers)
    platform.open_request(b"", sealed.headers)
    with pytest.raises(BadSignatureError, match=r"signature does not match .*\(plugin `sample` signer `hmac_sm3_salted`\)"):
        platform.open_request(b"", {**sealed.headers, "a": "9"})


def test_a_name_registered_twice_keeps_the_first_and_says_so() -> None:
    reg = Registry()
    reg.load("one", lambda p: p.check("dup", lambda v, s: None))
    reg.load("two", lambda p: p.check("dup", lambda v, s: "no"))
    assert reg.get("check", "dup").plugin == "one"  # type: ignore[union-attr]
    assert reg.problems == ["plugin `two` registers check `dup`, already provided by plugin `one`; ignored"]
