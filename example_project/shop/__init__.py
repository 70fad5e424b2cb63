"""A small shop whose customers, products and orders the example reports read."""
