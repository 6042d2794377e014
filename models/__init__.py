"""gtvision.models."""
