"""gtvision.sinks."""
