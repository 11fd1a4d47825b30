"""Neural models (RadioUNet; LocUNet to come), their checkpoints and the device/precision runtime."""
