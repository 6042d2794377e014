"""gtvision.sources."""
