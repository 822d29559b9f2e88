"""Small helpers shared across ghnlib."""
