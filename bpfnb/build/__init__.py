"""bpfnb.build: pure (no kernel fd): cell text -> object file."""
