"""Dockerfiles: reading them and their stages (``parse``), editing them (``edit``)."""
