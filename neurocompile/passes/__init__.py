"""Passes over a lowered IR, each a plain function with one job; compiler/pipeline.py lists them
in the order a build runs them."""
