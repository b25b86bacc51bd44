"""Output on a terminal (progress bars) and off one (plain lines)."""
