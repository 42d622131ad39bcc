"""Pulumi components for deploying artwork-matcher to AWS (see components/README.md)."""
