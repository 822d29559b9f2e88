r"""Named test splits of the architecture space, in the spirit of the
DeepNets-1M splits of the `"Parameter Prediction for Unseen Deep
Architectures" <https://arxiv.org/abs/2110.13100>`_ paper.

Each split is a variant of a training :class:`~ghnlib.archspace.ArchSpace`
sampled from its own range of seeds, all above
:obj:`~ghnlib.archspace.TRAIN_SEEDS`, so no split architecture has the seed
of a training one:

* ``'id'``: the training space itself (in-distribution);
* ``'wide'``: every width above the training range (up to twice its top),
  with four times the parameter budget;
* ``'deep'``: more cells and token blocks than in training (up to twice the
  most), with twice the budget;
* ``'dense'``: cells with more nodes than in training, densely connected,
  with twice the budget (CNNs and hybrids only);
* ``'bn_free'``: no batch norm;
* ``'transformer'``: patch tokens with transformer and mixer blocks only.
"""
import dataclasses
from typing import Iterable, List, Optional

from ghnlib.archspace.generator import TRAIN_SEEDS, ArchSpace
from ghnlib.archspace.network import RandomNet, build
from ghnlib.archspace.spec import ArchRecipe
from ghnlib.errors import GhnlibError

__all__ = ['SPLITS', 'SPLIT_SIZE', 'split_space', 'split_seed',
           'split_recipes', 'sample_split']

SPLITS = ('id', 'wide', 'deep', 'dense', 'bn_free', 'transformer')

#: Seeds each split owns: split :math:`k` uses seeds
#: ``TRAIN_SEEDS + k * SPLIT_SIZE`` onwards.
SPLIT_SIZE = 2 ** 24


def _check_split(name: str) -> int:
    if name not in SPLITS:
        raise GhnlibError(f'unknown split {name!r}; the splits are '
                          f'{", ".join(map(repr, SPLITS))}')
    return SPLITS.index(name)


def _scaled_budget(space: ArchSpace, factor: int) -> Optional[int]:
    return None if space.max_params is None else space.max_params * factor


def split_space(name: str, space: Optional[ArchSpace] = None) -> ArchSpace:
    r"""The space of split :obj:`name`, derived from the training space
    :obj:`space`.

    Args:
        name (str): One of :obj:`SPLITS`.
        space (ArchSpace, optional): The training space.
            (default: :obj:`ArchSpace()`)

    Returns:
        :class:`~ghnlib.archspace.ArchSpace`
    """
    _check_split(name)
    space = ArchSpace() if space is None else space
    if not isinstance(space, ArchSpace):
        raise GhnlibError(f'split_space: expected an ArchSpace, got '
                          f'{type(space).__name__}')
    replace = lambda **changes: dataclasses.replace(space, **changes)  # noqa
    if name == 'id':
        return space
    if name == 'wide':
        top = space.width[1]
        return replace(width=(top + 1, 2 * top),
                       max_params=_scaled_budget(space, 4))
    if name == 'deep':
        most = space.depth[1]
        return replace(depth=(most + 1, 2 * most),
                       max_params=_scaled_budget(space, 2))
    if name == 'dense':
        families = tuple(f for f in space.families if f != 'transformer')
        if not families:
            raise GhnlibError("split 'dense' has dense cells, which a space "
                              "of transformers only does not have; include "
                              "the 'cnn' or 'hybrid' family")
        most = space.nodes[1]
        return replace(nodes=(most + 1, 2 * most), connectivity=('dense', ),
                       families=families, max_params=_scaled_budget(space, 2))
    if name == 'bn_free':
        norms = tuple(n for n in space.norms if n != 'batch') or ('none', )
        return replace(norms=norms)
    return replace(families=('transformer', ))


def split_seed(name: str, index: int) -> int:
    """The seed of the :obj:`index`-th candidate of split :obj:`name`."""
    split = _check_split(name)
    if not isinstance(index, int) or not 0 <= index < SPLIT_SIZE:
        raise GhnlibError(f'split_seed: index must be in 0 … '
                          f'{SPLIT_SIZE - 1}, got {index!r}')
    return TRAIN_SEEDS + split * SPLIT_SIZE + index


def split_recipes(name: str, n: int, *, space: Optional[ArchSpace] = None,
                  exclude: Iterable[ArchRecipe] = ()) -> List[ArchRecipe]:
    r"""The first :obj:`n` recipes of split :obj:`name`: fixed by the
    split's seeds and the training space.

    Args:
        name (str): One of :obj:`SPLITS`.
        n (int): Number of architectures.
        space (ArchSpace, optional): The training space.
            (default: :obj:`ArchSpace()`)
        exclude (Iterable[ArchRecipe], optional): Architectures the split
            must not contain (e.g. the training set): a candidate with the
            same :meth:`~ghnlib.archspace.ArchRecipe.signature` as one of
            them is skipped for the next seed. (default: :obj:`()`)

    Returns:
        List[:class:`~ghnlib.archspace.ArchRecipe`]
    """
    if (not isinstance(n, int) or isinstance(n, bool)
            or not 0 <= n <= SPLIT_SIZE):
        raise GhnlibError(f'split_recipes: n must be in 0 … {SPLIT_SIZE}, '
                          f'got {n!r}')
    variant = split_space(name, space)
    excluded = set()
    for recipe in exclude:
        if not isinstance(recipe, ArchRecipe):
            raise GhnlibError(f'split_recipes: exclude holds ArchRecipes, '
                              f'got a {type(recipe).__name__}')
        excluded.add(recipe.signature())
    recipes, index = [], 0
    while len(recipes) < n:
        recipe = variant.recipe(split_seed(name, index))
        index += 1
        if recipe.signature() not in excluded:
            recipes.append(recipe)
    return recipes


def sample_split(name: str, n: int, *, space: Optional[ArchSpace] = None,
                 exclude: Iterable[ArchRecipe] = ()) -> List[RandomNet]:
    """The networks of :func:`split_recipes`."""
    return [build(recipe) for recipe in split_recipes(
        name, n, space=space, exclude=exclude)]
