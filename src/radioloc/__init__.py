"""radioloc: locate a phone in a dense city from the pathloss it reports for a few base stations."""

__version__ = "0.1.0"
