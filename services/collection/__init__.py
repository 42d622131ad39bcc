"""The collection snapshot, owned in one place: its layout, file formats, reference images and model stamp, and the
recipe for adding one reference.

Framework-free and light: importing this package imports nothing; each module imports only what it needs, and the
two that need heavy runtimes say so (:mod:`~services.collection.vectors` imports FAISS, used by the search service
and ``index build``; :mod:`~services.collection.local` imports the in-process model and feature extractor, used
only by ``index build``; :func:`~services.collection.doctor.examine_snapshot` imports both, for ``index doctor``).
The gateway, with neither, uses the rest (the collection report's file shape is in
:mod:`~services.collection.report_file`, light).
"""
