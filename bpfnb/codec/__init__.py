"""bpfnb.codec: raw records <-> readable values, with no kernel and no UI.

- :mod:`~bpfnb.codec.plan`: BTF type -> one field plan -> :class:`~bpfnb.codec.plan.Codec`
  (dtype, columns, one value <-> bytes, decoders chosen per column, roles and units);
- :mod:`~bpfnb.codec.nodes`: the plan's nodes, one class per kind of C value;
- :mod:`~bpfnb.codec.columns` and :mod:`~bpfnb.codec.values`: the vectorised column
  passes and the one-value checks the nodes share;
- :mod:`~bpfnb.codec.decoders`: syscall, errno, time, address, argv, flag and unit
  decoders, chosen by typedef or by name;
- :mod:`~bpfnb.codec.roles`: what a column is to a dashboard (counter, id, ...);
- :mod:`~bpfnb.codec.frames`: codecs and record arrays -> pandas DataFrames;
- :mod:`~bpfnb.codec.histogram` and :mod:`~bpfnb.codec.streamparse`: histogram maps and
  ring buffer / perf buffer record parsing.
"""
