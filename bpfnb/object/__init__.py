"""bpfnb.object: pure: the object file, its BTF, the map-type table and SEC() table."""
