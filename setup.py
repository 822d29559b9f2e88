"""Build and install ghnlib.

Install with ``pip install --no-build-isolation -e .`` so that pip builds
against the torch already installed (pinned in ``constraints.txt``) instead of
resolving an unpinned one in an isolated build environment.

The C++ extension ``ghnlib._C`` (``csrc/``) is built next to the package: a
C++-only ``CppExtension`` by default, a ``CUDAExtension`` when torch is a CUDA
build and a CUDA toolkit is found. ``GHNLIB_FORCE_CPU=1`` or
``GHNLIB_FORCE_CUDA=1`` overrides that choice (the latter fails
the build, instead of falling back to C++ only, when CUDA is not possible). Without torch at build time
the package installs without the extension and runs on the pure-PyTorch ops.
"""
import glob
import os
import sys

from setuptools import find_packages, setup


def _env_flag(name: str) -> bool:
    return os.environ.get(name, '').strip().lower() not in ('', '0', 'false',
                                                            'no', 'off')


def _compiler_has_openmp() -> bool:
    """Whether the default C++ compiler builds and links an OpenMP
    program."""
    import subprocess
    import sysconfig
    import tempfile

    compiler = (os.environ.get('CXX')
                or sysconfig.get_config_var('CXX') or 'c++').split()
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, 'omp.cpp')
        with open(source, 'w') as f:
            f.write('#include <omp.h>\nint main() { return '
                    'omp_get_max_threads() > 0 ? 0 : 1; }\n')
        try:
            result = subprocess.run(
                compiler + ['-fopenmp', source, '-o',
                            os.path.join(tmp, 'omp')],
                capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
    return result.returncode == 0


def extension_build():
    """``(ext_modules, cmdclass)`` for ``ghnlib._C``."""
    try:
        import torch
        from torch.utils.cpp_extension import (CUDA_HOME, BuildExtension,
                                               CppExtension, CUDAExtension)
    except ImportError:
        print('ghnlib: torch is not importable while building, so the C++ '
              'extension ghnlib._C is skipped (the pure-PyTorch ops are '
              'used); install torch first, then '
              '`pip install --no-build-isolation -e .`')
        return [], {}
    force_cpu, force_cuda = (_env_flag('GHNLIB_FORCE_CPU'),
                             _env_flag('GHNLIB_FORCE_CUDA'))
    if force_cpu and force_cuda:
        raise SystemExit('ghnlib: GHNLIB_FORCE_CPU and GHNLIB_FORCE_CUDA are '
                         'both set; set at most one of them.')
    cuda_possible = torch.version.cuda is not None and CUDA_HOME is not None
    if force_cuda and not cuda_possible:
        raise SystemExit(
            f'ghnlib: GHNLIB_FORCE_CUDA=1 needs a CUDA build of torch '
            f'(torch.version.cuda is {torch.version.cuda}) and a CUDA toolkit '
            f'(CUDA_HOME is {CUDA_HOME}); install them or unset '
            f'GHNLIB_FORCE_CUDA to build the C++-only extension.')
    with_cuda = cuda_possible and not force_cpu
    sources = (sorted(glob.glob('csrc/*.cpp'))
               + sorted(glob.glob('csrc/autograd/*.cpp'))
               + sorted(glob.glob('csrc/cpu/*.cpp')))
    # torch >= 2.10 headers use C++20; -ffp-contract=off keeps a * x + b two
    # roundings, as in the pure-PyTorch reference. at::parallel_for is a
    # header template that only runs threads when the extension itself is
    # compiled with OpenMP (as torch's CPU builds are on Linux).
    cxx_flags = ['-O3', '-g0', '-std=c++20', '-ffp-contract=off']
    link_flags = []
    if (sys.platform.startswith('linux')
            and torch.backends.openmp.is_available()):
        if _compiler_has_openmp():
            cxx_flags.append('-fopenmp')
            link_flags.append('-fopenmp')
        else:
            print('ghnlib: the C++ compiler cannot build OpenMP code (no '
                  'omp.h or libgomp?), so the extension\'s kernels will run '
                  'on one thread')
    if with_cuda:
        extension = CUDAExtension(
            'ghnlib._C', sources + sorted(glob.glob('csrc/cuda/*.cu')),
            define_macros=[('WITH_CUDA', None)],
            extra_compile_args={'cxx': cxx_flags,
                                'nvcc': ['-O2', '-std=c++20',
                                         '--expt-relaxed-constexpr']},
            extra_link_args=link_flags)
    else:
        extension = CppExtension('ghnlib._C', sources,
                                 extra_compile_args={'cxx': cxx_flags},
                                 extra_link_args=link_flags)
    return [extension], {'build_ext': BuildExtension}


ext_modules, cmdclass = extension_build()

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
        'networkx',
        'safetensors',
        'tqdm',
        'matplotlib',
        # digits, bundled with scikit-learn, is the default dataset and the
        # data of the shipped GHNs.
        'scikit-learn',
        'tyro',
    ],
    extras_require={
        'onnx': ['onnx'],
        'pcam': ['h5py'],
        'scatter': ['torch-scatter'],
        'test': ['pytest', 'pytest-benchmark', 'onnx', 'onnxruntime',
                 'onnxscript', 'scipy', 'torchvision',
                 'h5py'],
    },
    entry_points={'console_scripts': ['ghnlib = ghnlib.cli:main']},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
