"""Where media bytes live: the local filesystem or an S3-compatible object store."""
