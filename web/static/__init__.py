"""Static files of the operator page."""
