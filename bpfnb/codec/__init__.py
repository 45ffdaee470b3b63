"""bpfnb.codec"""
