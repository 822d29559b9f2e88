r"""The dataset flags the training commands share."""
import dataclasses
from typing import List, Optional, Sequence

from torch.utils.data import Dataset

from ghnlib.data import get_splits

__all__ = ['DataOptions']


@dataclasses.dataclass(frozen=True)
class DataOptions:
    r"""The images a command trains on (:func:`ghnlib.data.get_splits`).

    Args:
        dataset (str): :obj:`'digits'` (bundled), :obj:`'cifar10'` or
            :obj:`'pcam'`. (default: :obj:`'digits'`)
        root (str, optional): The dataset's folder (not for digits).
            (default: :obj:`None`)
        image_size (int, optional): Side the digits are resized to; 16 when
            not given. (default: :obj:`None`)
        channels (int, optional): Channels of the digits; 3 when not given.
            (default: :obj:`None`)
    """
    dataset: str = 'digits'
    root: Optional[str] = None
    image_size: Optional[int] = None
    channels: Optional[int] = None

    def splits(self, names: Sequence[str]) -> List[Dataset]:
        """The splits called :obj:`names`, in that order."""
        return get_splits(self.dataset, names, root=self.root,
                          image_size=self.image_size, channels=self.channels)
