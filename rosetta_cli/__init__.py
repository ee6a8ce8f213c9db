"""rosetta: ego-exo view-invariant video representation learning (Viewpoint Rosetta Stone)."""

__version__ = "0.1.0"
