"""The app fixtures of tests/gui (``start_cove``, ``cove``): every app a test here starts in this
process is shut down in the fixture's teardown, whatever happens in the test."""

from __future__ import annotations

from tests.gui.conftest import cove, start_cove  # noqa: F401 - fixtures, found by pytest by name
