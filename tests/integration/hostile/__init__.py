"""Hostile input: broken Dockerfiles, credentials that must never be printed."""
