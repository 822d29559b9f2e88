"""torchvision's model definitions for the examples, or None where it is
not installed or does not import next to this torch."""
import os
import sys

_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                      'tests')


def import_torchvision():
    """Returns the torchvision module, or None (with the reason printed)."""
    try:
        import torchvision
        return torchvision
    except ImportError:
        print('\ntorchvision is not installed: skipping its models')
        return None
    except RuntimeError as error:
        # A torchvision build for another torch (a CUDA wheel next to a CPU
        # torch) stops at its compiled ops; a checkout of this repository
        # carries the tests' workaround for that.
        if not os.path.exists(os.path.join(_TESTS, 'torchvision_shim.py')):
            print(f'\ntorchvision does not import next to torch '
                  f'{sys.modules["torch"].__version__} ({error}): skipping '
                  'its models; install the torchvision build of your torch')
            return None
    sys.path.insert(0, _TESTS)
    from torchvision_shim import import_torchvision as import_with_shim
    return import_with_shim()
