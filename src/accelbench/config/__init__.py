"""Configuration: the run as asked for (RunConfig), its cells (CellSpec), presets.

Imports no runtime and no torch."""
