"""Test suites for atomic-reactor (a package so that ``tests.support`` is importable)."""
