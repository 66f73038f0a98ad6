"""nbroutes' tests; the folders mirror the package (see README.md)."""
