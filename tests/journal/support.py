"""What the journal tests share: a settable clock and the interface and target they journal for."""

from __future__ import annotations

T0 = 1_700_000_000.0
IFACE = "jilin_imaging/savePatientExam"
TARGET = "jilin"


class Clock:
    """Settable wall clock: tests move time explicitly, never sleep."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
