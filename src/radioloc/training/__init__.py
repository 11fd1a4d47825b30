"""Training loops (RadioUNet, LocUNet)."""
