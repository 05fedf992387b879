"""Application services (bridges and bots): another front door into the handlers.

spec: application-service-api.md.  Built in the application services issue.
"""
