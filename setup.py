"""Packaging hook for what pyproject.toml cannot say: the templates' package.

The ready programs live in the repository's top-level ``bpf_templates/`` folder; they
are shipped as the package data of ``bpfnb.bpf_templates`` (``package_dir`` maps that
package to the folder), so an installed bpfnb lists them with importlib.resources.
bpfnb's C headers (``bpfnb/include/**/*.h``) ship as the data of the ``bpfnb.include``
packages. Every other setting is in pyproject.toml.

One optional C extension: ``bpfnb/kernel/streams/_ringcopy.c``, the ring buffer copy
loop (loaded with ctypes, see ``bpfnb.kernel.streams.ringcopy``). ``optional=True``: when
it cannot be built (no C compiler, no Python headers), the install goes on and bpfnb uses
its numpy path; ``make setup`` says which.
"""

from setuptools import Extension, find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["bpfnb", "bpfnb.*"], exclude=["*__pycache__*"]),
        "bpfnb.bpf_templates",
    ],
    package_dir={"bpfnb.bpf_templates": "bpf_templates"},
    ext_modules=[
        Extension(
            "bpfnb.kernel.streams._ringcopy",
            ["bpfnb/kernel/streams/_ringcopy.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ],
    package_data={
        "bpfnb": ["py.typed"],
        "bpfnb.include": ["*.h"],
        "bpfnb.include.bpfnb": ["*.h"],
        "bpfnb.bpf_templates": ["*.bpf.c"],
    },
)
