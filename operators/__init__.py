"""gtvision.operators."""
