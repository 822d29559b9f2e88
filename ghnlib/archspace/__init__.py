r"""Random architectures for training graph hypernetworks (a seeded
generator) and named test splits."""
from ghnlib.archspace.spec import (ACTIVATIONS, ARCHSPACE_VERSION,
                                   BLOCK_KINDS, FAMILIES, NORMS, OP_KINDS,
                                   TOKEN_BLOCKS, ArchRecipe, CellSpec,
                                   ConvStageSpec, HeadSpec, NodeSpec, OpSpec,
                                   StemSpec, TokenBlockSpec, TokenStageSpec)
from ghnlib.archspace.network import RandomNet, build, count_parameters
from ghnlib.archspace.generator import (CONNECTIVITY, TRAIN_SEEDS, ArchSpace,
                                        sample, sample_recipes)
from ghnlib.archspace.splits import (SPLITS, sample_split, split_recipes,
                                     split_seed, split_space)
from ghnlib.archspace.real_models import REAL_MODELS, NamedModel, real_models

__all__ = [
    'ArchSpace',
    'ArchRecipe',
    'RandomNet',
    'build',
    'sample',
    'sample_recipes',
    'count_parameters',
    'SPLITS',
    'split_space',
    'split_recipes',
    'split_seed',
    'sample_split',
    'REAL_MODELS',
    'NamedModel',
    'real_models',
    'OpSpec',
    'NodeSpec',
    'CellSpec',
    'StemSpec',
    'ConvStageSpec',
    'TokenBlockSpec',
    'TokenStageSpec',
    'HeadSpec',
    'ARCHSPACE_VERSION',
    'BLOCK_KINDS',
    'FAMILIES',
    'NORMS',
    'ACTIVATIONS',
    'OP_KINDS',
    'TOKEN_BLOCKS',
    'CONNECTIVITY',
    'TRAIN_SEEDS',
]
