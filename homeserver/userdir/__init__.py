"""The user directory: ``POST /user_directory/search`` (docs/user-directory.md)."""
