"""Email addresses on accounts (third-party identifiers): validation and storage
rules.  spec: client-server-api/_index.md ("Adding Account Administrative Contact
Information")"""
