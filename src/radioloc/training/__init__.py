"""Training loops (RadioUNet; LocUNet to come)."""
