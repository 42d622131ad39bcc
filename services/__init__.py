"""The artwork matcher's services and their shared packages.

Each service (``gateway``, ``embeddings``, ``search``, ``geometric``) is a Litestar app of its own, run with
``python -m services run <name>``; none imports another's modules. What they share lives in ``common`` (errors,
HTTP wiring, wire schemas, settings, service facts), ``collection`` (the snapshot's formats and the recipe for adding
a reference) and ``decision`` (the calibrated decision rule and its fitting).
"""
