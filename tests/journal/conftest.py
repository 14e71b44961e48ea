from __future__ import annotations

import pytest

from tests.journal.support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()
