"""The ready programs of ``%bpf templates``, shipped as package data.

This folder is installed as the package ``bpfnb.bpf_templates`` (see setup.py); its
``*.bpf.c`` files are read with importlib.resources by :mod:`bpfnb.build.templates`.
"""
