"""Talking to registries directly: the HTTP API client and where credentials come from."""
