"""SQL migrations, applied in file-name order by ``gtvision db upgrade``."""
