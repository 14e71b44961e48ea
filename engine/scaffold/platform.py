"""A new platform's folder, rendered from the templates in engine/scaffold/templates/.

The result is a starting point that is already correct: `specbridge check` passes on it, its example
interface runs as a twin, and every slot a document fills (transport, auth, crypto profile, success
rule, error codes, code tables, notes) is present with a comment saying what goes there.
"""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path

import jinja2

from engine.errors import SpecbridgeError

TRANSPORTS = ("http_json", "soap", "form")
ID_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
EXAMPLE_INTERFACE = "uploadReport"


class ScaffoldError(SpecbridgeError):
    """The scaffold cannot be written as asked (bad id, existing folder, unknown transport)."""


def _yamlstr(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML): any title is safe to render."""
    return json.dumps(value, ensure_ascii=False)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engine.scaffold", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["yamlstr"] = _yamlstr
    return env


def check_id(pid: str) -> None:
    """A platform id is a directory name, a Python-like identifier and part of secret names."""
    if not ID_RE.fullmatch(pid) or keyword.iskeyword(pid):
        raise ScaffoldError(f"invalid platform id {pid!r}: use a lowercase identifier (a-z, 0-9 and _, starting with a letter; "
                            "e.g. demo_province)")


def _service_name(pid: str) -> str:
    """SOAP service names are conventionally CamelCase: demo_province -> DemoProvinceService."""
    return "".join(part.capitalize() for part in pid.split("_") if part) + "Service"


def new_platform(specs: Path, pid: str, *, transport: str = "http_json", title: str | None = None) -> list[Path]:
    """Write specs/platforms/<pid>/ and return the files written (relative to `specs`)."""
    check_id(pid)
    if transport not in TRANSPORTS:
        raise ScaffoldError(f"unknown transport {transport!r} (one of: {', '.join(TRANSPORTS)})")
    if not specs.is_dir():
        raise ScaffoldError(f"{specs}: no such specs directory (run from the repository root, or pass --dir)")
    for kind in ("platforms", "sources"):
        if (specs / kind / pid).exists():
            raise ScaffoldError(f"{specs / kind / pid} already exists: choose another id or remove it")
    ctx = {"id": pid, "title": title or f"{pid} platform", "transport": transport, "service": _service_name(pid)}
    env = _env()
    files = {
        "platform.yaml": "platform.yaml.j2",
        f"interfaces/{EXAMPLE_INTERFACE}.yaml": f"interface.{transport}.yaml.j2",
        "codes/patient_type.yaml": "codes.yaml.j2",
        f"tests/{EXAMPLE_INTERFACE}.yaml": f"test.{transport}.yaml.j2",
    }
    texts = {rel: env.get_template(tpl).render(ctx) for rel, tpl in files.items()}
    root = specs / "platforms" / pid
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        root.mkdir()
    except FileExistsError:
        raise ScaffoldError(f"{root} already exists: choose another id or remove it") from None
    for rel, text in texts.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return [Path("platforms", pid, rel) for rel in texts]
