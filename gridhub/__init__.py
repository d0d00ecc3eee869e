"""gridhub: the command line, the process supervisor and the service entry points."""

__version__ = "0.1.0"
