"""Build every service image with buildah and run the four containers for real on this machine.

Needs root and Debian's ``buildah`` (plus ``debootstrap`` when the base image cannot be pulled):
``apt-get update && apt-get install -y buildah debootstrap``. No Docker daemon is used: images are built with
``buildah bud --storage-driver vfs --isolation chroot --network host`` from each service's Dockerfile with its build
arguments (``services/common/topology.py``: ``services/Dockerfile`` for gateway, search and geometric,
``services/embeddings/Dockerfile``'s ``cpu`` target for embeddings; build context: the repository root), in Docker
format so each HEALTHCHECK is kept.

Steps: make sure the base ``python:3.11-slim`` is in buildah's storage (pulled once; where no registry answers, a
stand-in is made from Debian packages: a ``debootstrap`` minbase of the same release, bookworm, with its Python 3.11,
venv, ``passwd`` and CA certificates, committed under the real base's name so the Dockerfiles build unchanged);
build the images; bring a snapshot of ``../shared/data/museum-dev`` in the work directory up to date with the
project's CLI; start the four containers on the host network, on loopback and on the services' declared ports
(the images' own), each with a copy of the snapshot mounted read/write where the ECS tasks mount it; wait until each
answers ``/health``; run each image's HEALTHCHECK command inside its container; check that the serving process runs
as uid 1000; identify a seeded sample of labelled photos through the containerised gateway and count right answers;
remove the containers. Exits 1 when a step fails or fewer than ``--min-right`` answers are right. With
``--services`` naming fewer than four, only those are built, started and checked (no photos); ``--no-run`` builds.

    sudo .venv/bin/python -m bench.images

The CPU embeddings image takes its torch from PyTorch's CPU index when that host resolves, else from PyPI
(``--torch-index-url``). Where a TLS-intercepting proxy sits between this machine and PyPI, ``--ca-bundle``
(default ``$PIP_CERT``) is mounted into every build step with a pip configuration that trusts it; nothing of it is
committed to the images beyond the empty mount point ``/etc/pip.conf``.
"""
