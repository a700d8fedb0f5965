"""Odoo-free core of the quicksol event bus (names, routing, envelope, topology, publisher)."""

__all__ = ["__version__"]

__version__ = "18.0.1.0.0"
