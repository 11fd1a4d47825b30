"""Datasets: the RadioLocSeer sampling protocol, on-disk layout, generation and PyTorch loading."""
