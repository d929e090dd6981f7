"""Passes: plain functions Network -> changed flag, each with one job (see compiler.py for the
order they run in)."""
