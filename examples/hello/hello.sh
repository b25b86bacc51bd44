#!/bin/sh
echo "Hello from an image built by atomic-reactor."
