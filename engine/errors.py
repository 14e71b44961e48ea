"""Caller-oriented exception hierarchy (after httpx): catch the class that says what *you* must do."""

from __future__ import annotations


class SpecbridgeError(Exception):
    """Root of every error specbridge raises on purpose."""


class SpecError(SpecbridgeError):
    """A spec file is wrong: the integrator must fix the spec.

    Carries every finding so `check` can print them all, each as `file:line: message`.
    """

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__("\n".join(str(f) for f in findings) or "spec error")


class Finding:
    """One lint/load finding, located in a spec file."""

    __slots__ = ("file", "line", "message", "severity")

    def __init__(self, file: str, line: int, message: str, severity: str = "error") -> None:
        self.file = file
        self.line = line
        self.message = message
        self.severity = severity

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def __repr__(self) -> str:
        return f"Finding({self!s})"


class UnknownInterface(SpecbridgeError):
    """A caller named an interface or platform that no loaded spec defines."""


class MessageError(SpecbridgeError):
    """A message could not even be decoded (not JSON, truncated XML, too large, wrong encoding)."""

    def __init__(self, reason: str, *, rule: str = "parse", path: str = "$") -> None:
        self.reason = reason
        self.rule = rule
        self.path = path
        super().__init__(reason)
