"""gridhub: the entry package (command line, settings, process supervision)."""

__version__ = "0.1.0"
