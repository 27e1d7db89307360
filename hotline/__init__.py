"""The 12345 hotline core: tickets, the one intake point, the workflow, storage, auth and the REST API."""
