"""workbench: supervise many AI coding agents from one terminal."""

__version__ = "0.1.0"
