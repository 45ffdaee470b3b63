"""bpfnb.build"""
