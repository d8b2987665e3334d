"""The parent side of a run: the matrix loop, cell isolation, ranks, the result store."""
