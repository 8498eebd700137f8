"""PF-MSMTrec: personalized federated multi-scenario multi-task recommendation on TensorFlow Federated."""

import setuptools

setuptools.setup(
    name='pfmsmt',
    version='0.1.0',
    description='Personalized federated multi-scenario multi-task recommendation (PF-MSMTrec) on TFF',
    packages=setuptools.find_packages(include=['pfmsmt_tf', 'pfmsmt_tf.*', 'federated', 'federated.*',
                                               'data_pipelines', 'data_pipelines.*']),
    python_requires='>=3.9,<3.12',
    # The pinned stack is installed from requirements.txt / requirements-tff.txt (see the Makefile): TFF 0.87
    # must be installed without its own dependency pins, which pip cannot express here.
    install_requires=['absl-py', 'numpy', 'pandas'],
    entry_points={'console_scripts': ['pfmsmt=federated.cli:main']},
)
