"""Partitioning and placement onto neurocores and chips."""

from .place import place

__all__ = ["place"]
