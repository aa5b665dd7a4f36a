"""contactd: a real-time contact-center server."""

__version__ = "0.1.0"
