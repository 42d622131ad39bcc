"""Code shared by every service: errors, wire contracts, settings, image decoding, app plumbing."""
