"""gtvision.flows."""
