"""bpfnb.kernel: everything that owns a kernel fd."""
