"""Fusion benchmark: the product's resolution rules on the flight-truth data set (issue 9)."""
