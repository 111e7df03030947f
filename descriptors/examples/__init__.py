"""Example MEC application packages and their builder (build.py)."""
