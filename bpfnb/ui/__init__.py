"""bpfnb.ui: the only layer importing IPython and ipywidgets.

Modules, each one job:

- :mod:`~bpfnb.ui.sources`: the Protocols the UI reads from the kernel layer;
- :mod:`~bpfnb.ui.refresh`: the refresher thread and the registry of one per owner;
- :mod:`~bpfnb.ui.views`: view models (table, event tail, histogram, program header);
- :mod:`~bpfnb.ui.html`: HTML/CSS of the view models, static snapshots;
- :mod:`~bpfnb.ui.flamegraph`: flame graphs of stack trace maps (live view, snapshots);
- :mod:`~bpfnb.ui.summary`: summaries of maps that cannot be listed;
- :mod:`~bpfnb.ui.widgets`: ipywidgets assembly with explicit control callbacks;
- :mod:`~bpfnb.ui.dashboard`: a program's dashboard and ``live_view`` (``Map.live()``);
- :mod:`~bpfnb.ui.magics`: ``%%bpf`` and ``%bpf``.

Nothing is imported here, so ``import bpfnb.ui.magics`` does not pull in ipywidgets.
"""
