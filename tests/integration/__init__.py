"""Integration tests: need a real container engine and the docker-registry binary."""
