"""Tools around the services: the ``artwork-matcher`` command line."""
