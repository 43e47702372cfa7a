"""Shared test setup. The helpers themselves live in helpers.py (a conftest is not importable by name)."""

from __future__ import annotations

import os
import sys

# Test files import `helpers` from this folder whatever pytest's import mode.
_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
