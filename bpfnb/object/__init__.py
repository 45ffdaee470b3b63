"""bpfnb.object"""
