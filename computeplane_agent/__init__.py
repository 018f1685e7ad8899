"""Lakeplane compute-plane agent (runs inside the customer's EKS; no Django)."""

__version__ = "0.1.0"
