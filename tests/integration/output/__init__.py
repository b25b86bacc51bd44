"""What a build leaves for people and tools: log file, metadata, image id file."""
