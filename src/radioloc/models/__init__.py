"""Neural models (RadioUNet, LocUNet), their checkpoints and the device/precision runtime."""
