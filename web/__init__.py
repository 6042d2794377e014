"""gtvision.web."""
