"""Geometric verification service: ORB features, ratio-test matching and MAGSAC++ homographies."""
