import torch

from ghnlib.hyperrep import HyperRepresentation, train_hyperrep


def test_train_hyperrep_fits_and_saves(zoo, tmp_path):
    hyper = train_hyperrep(zoo[0], tmp_path / 'hr', epochs=1, latent_dim=2,
                           d_model=16, top_fraction=0.5, progress=False)
    assert (tmp_path / 'hr' / 'hyperrep.safetensors').is_file()
    loaded = HyperRepresentation.load(tmp_path / 'hr')
    assert loaded.sampling['top_fraction'] == 0.5
    assert loaded.kde().num_points == 5  # half of the ten checkpoints
    assert loaded.autoencoder.latent_dim == 2
    first = hyper.sample(2, torch.Generator().manual_seed(0))
    second = loaded.sample(2, torch.Generator().manual_seed(0))
    assert all(torch.equal(a[k], b[k]) for a, b in zip(first, second)
               for k in a)
