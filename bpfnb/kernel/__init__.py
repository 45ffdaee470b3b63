"""bpfnb.kernel"""
