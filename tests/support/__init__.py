"""Helpers shared by the test suites (container engine, local registries, cleanup)."""
