"""The content repository: uploads, downloads, thumbnails, URL previews.

spec: client-server-api/modules/content_repo.md
"""
