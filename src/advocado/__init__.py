"""Advocado: turn the customers who already love a brand into its advocates."""

__version__ = "0.1.0"
