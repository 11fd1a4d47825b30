"""Neural models: RadioUNet (radio-map estimation) and, later, LocUNet (localization)."""
