"""Sub-commands of the ``gtvision`` CLI (one module per command)."""
