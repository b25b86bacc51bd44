"""Several builds at once, and many in a row: isolation and flat resource use."""
