r"""Model zoos: many networks of one architecture trained from different
seeds, the data of local initialisation and hyper-representations."""
from ghnlib.zoo.zoo import ZooCheckpoint, ZooMember, build_zoo, load_zoo

__all__ = ['ZooMember', 'ZooCheckpoint', 'build_zoo', 'load_zoo']
