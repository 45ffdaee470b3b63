"""Packaging hook for what pyproject.toml cannot say: the templates' package.

The ready programs live in the repository's top-level ``bpf_templates/`` folder; they
are shipped as the package data of ``bpfnb.bpf_templates`` (``package_dir`` maps that
package to the folder), so an installed bpfnb lists them with importlib.resources.
bpfnb's C headers (``bpfnb/include/**/*.h``) ship as the data of the ``bpfnb.include``
packages. Every other setting is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["bpfnb", "bpfnb.*"], exclude=["*__pycache__*"]),
        "bpfnb.bpf_templates",
    ],
    package_dir={"bpfnb.bpf_templates": "bpf_templates"},
    package_data={
        "bpfnb": ["py.typed"],
        "bpfnb.include": ["*.h"],
        "bpfnb.include.bpfnb": ["*.h"],
        "bpfnb.bpf_templates": ["*.bpf.c"],
    },
)
