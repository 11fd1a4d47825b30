"""Deployments (an operator's area, BSs and radio maps, saved without the dataset layout) and serving them."""
