"""Build and install ghnlib.

Install with ``pip install --no-build-isolation -e .`` so that pip builds
against the torch already installed (pinned in ``constraints.txt``) instead of
resolving an unpinned one in an isolated build environment.
"""
from setuptools import find_packages, setup

setup(
    name='ghnlib',
    version='0.1.0',
    description='Initialise neural networks with generative models: graph '
    'hypernetworks (GHN-2, Noise GHN) and local kernel generators',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.10',
    packages=find_packages(include=['ghnlib', 'ghnlib.*']),
    package_data={'ghnlib': ['pretrained/*.safetensors',
                             'pretrained/README.md']},
    install_requires=[
        'torch>=2.4',
        'torch-geometric>=2.5',
        'numpy',
        'scipy',
        'networkx',
        'safetensors',
        'tqdm',
        'matplotlib',
    ],
    extras_require={
        'onnx': ['onnx'],
        'pcam': ['h5py'],
        'scatter': ['torch-scatter'],
        'test': ['pytest', 'pytest-benchmark', 'onnx', 'onnxruntime',
                 'onnxscript', 'scikit-learn', 'torchvision', 'h5py'],
    },
    entry_points={'console_scripts': ['ghnlib = ghnlib.cli:main']},
)
