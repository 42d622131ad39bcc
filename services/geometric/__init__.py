"""Geometric verification service: RootSIFT features, a descriptor-vote shortlist, ratio-test matching and MAGSAC++
homographies."""
