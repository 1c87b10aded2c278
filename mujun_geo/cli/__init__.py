"""Command line interface: ``mujun-geo``."""
