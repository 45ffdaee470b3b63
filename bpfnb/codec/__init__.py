"""bpfnb.codec: pure: raw records <-> readable values and DataFrames, with no kernel and no UI."""
