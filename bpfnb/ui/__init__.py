"""bpfnb.ui"""
