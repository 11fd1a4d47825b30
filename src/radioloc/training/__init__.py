"""Training loops (RadioUNet, LocUNet) and the runtime they share (device, precision, checkpoints)."""
