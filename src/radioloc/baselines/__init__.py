"""Classical localizers LocUNet must beat: kNN fingerprinting (plain, conditional, adaptive)."""
