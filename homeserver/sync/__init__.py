"""/sync: the changes a user has not seen yet."""
