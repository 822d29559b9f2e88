import json
import os

import pytest
import torch
from torch.utils.data import TensorDataset

from ghnlib import GraphHyperNetwork
from ghnlib.errors import GhnlibError
from ghnlib.train.ghn_trainer import GHNTrainer, GHNTrainingConfig
from ghnlib.train.ghn_loss import MetaBatchLoss


@pytest.fixture(scope='module')
def digits():
    """sklearn's real 8×8 digits, 3 channels, standardised; train / val."""
    from sklearn.datasets import load_digits
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32) / 16
    images = images.unsqueeze(1).repeat(1, 3, 1, 1)
    images = (images - images.mean()) / images.std()
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, val = order[:384], order[1400:]
    return (TensorDataset(images[train], labels[train]),
            TensorDataset(images[val], labels[val]))


def small_ghn(noise_dim=0):
    torch.manual_seed(0)
    return GraphHyperNetwork(hidden_channels=16, decoder_channels=32, rank=4,
                             noise_dim=noise_dim)


def config(**kwargs):
    options = dict(archs=('resnet20', ), val_arch='resnet20', epochs=2,
                   batch_size=32, milestones=(1, ), max_steps_per_epoch=4,
                   calibration_batches=1)
    options.update(kwargs)
    return GHNTrainingConfig(**options)


def ghn_state(ghn):
    return {k: v.clone() for k, v in ghn.state_dict().items()}


@pytest.mark.parametrize('noise_dim', [0, 8])
def test_training_lowers_the_loss(digits, noise_dim):
    train, val = digits
    ghn = small_ghn(noise_dim)
    # λ = 0.1: at full weight the similarity term slows the start of a
    # Noise GHN trained from scratch (benchmarks/RESULTS.md).
    trainer = GHNTrainer(ghn, train, val,
                         config(lr=3e-3, similarity_weight=0.1),
                         progress=False)
    images, labels = train.tensors[0][:64], train.tensors[1][:64]
    loss_fn = MetaBatchLoss(ghn, trainer.models, trainer.graphs,
                            similarity_weight=0.1)
    noise = torch.randn(2, noise_dim, generator=torch.Generator().manual_seed(1))

    def loss():
        with torch.no_grad():
            return loss_fn(images, labels, noise if noise_dim else None)[1][
                'loss'].item()

    history = [loss()]
    for _ in range(30):
        stats = trainer.train_step(images, labels)
        assert not stats['skipped']
        history.append(loss())
    # The last steps, averaged: single steps of Adam on one batch are noisy.
    assert sum(history[-5:]) / 5 < 0.9 * history[0]


def test_noise_ghn_loss_is_equation_4(digits):
    train, _ = digits
    ghn = small_ghn(noise_dim=8)
    trainer = GHNTrainer(ghn, train, digits[1], config(), progress=False)
    loss_fn = MetaBatchLoss(ghn, trainer.models, trainer.graphs,
                            similarity_weight=0.5)
    images, labels = train.tensors[0][:16], train.tensors[1][:16]
    noise = torch.randn(2, 8)
    loss, stats = loss_fn(images, labels, noise)
    model = trainer.models[0]
    logits = [torch.func.functional_call(model, w, (images, ))
              for w in ghn.predict(trainer.graphs * 2, noise=noise)]
    expected = sum(torch.nn.functional.cross_entropy(out, labels)
                   for out in logits)
    expected = expected + 0.5 * torch.nn.functional.cosine_similarity(
        logits[0], logits[1], dim=-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < stats['similarity'].item() <= 1


def test_resume_repeats_an_uninterrupted_run(digits, tmp_path, monkeypatch):
    train, val = digits
    whole = GHNTrainer(small_ghn(8), train, val, config(checkpoint_every=1),
                       out_dir=tmp_path / 'whole', progress=False)
    whole.fit()

    first = GHNTrainer(small_ghn(8), train, val, config(checkpoint_every=1),
                       out_dir=tmp_path / 'cut', progress=False)
    calls = {'n': 0}
    step = GHNTrainer.train_step

    def interrupted(self, *args):
        calls['n'] += 1
        if calls['n'] == 6:  # in the middle of the second epoch
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(GHNTrainer, 'train_step', interrupted)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    monkeypatch.setattr(GHNTrainer, 'train_step', step)

    resumed = GHNTrainer(small_ghn(8), train, val, config(checkpoint_every=1),
                         out_dir=tmp_path / 'cut', progress=False)
    resumed.fit(resume=True)
    for key, value in whole.ghn.state_dict().items():
        assert torch.equal(value, resumed.ghn.state_dict()[key]), key
    assert resumed.history == [
        {**e, 'seconds': r['seconds']} for e, r in zip(whole.history,
                                                       resumed.history)]
    lines = (tmp_path / 'cut' / 'log.jsonl').read_text().splitlines()
    assert [json.loads(line)['epoch'] for line in lines] == [1, 2]
    loaded = GraphHyperNetwork.load(tmp_path / 'cut' / 'ghn.safetensors')
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, whole.ghn.state_dict()[key])


def test_nan_batch_is_skipped_and_never_saved(digits, tmp_path):
    train, val = digits
    images = train.tensors[0].clone()
    images[5] = float('nan')  # poisons the batch-norm statistics of its batch
    poisoned = TensorDataset(images, train.tensors[1])
    trainer = GHNTrainer(small_ghn(), poisoned, val,
                         config(epochs=1, max_steps_per_epoch=None),
                         out_dir=tmp_path, progress=False)
    before = ghn_state(trainer.ghn)
    batches = trainer._batches(0)
    bad = next(i for i, b in enumerate(batches) if 5 in b.tolist())
    trainer.global_step = 0
    for i in range(bad):
        trainer.train_step(*trainer._fetch(batches[i]))
    just_before = ghn_state(trainer.ghn)
    stats = trainer.train_step(*trainer._fetch(batches[bad]))
    assert stats['skipped'] == 1 and trainer.skipped_steps == 1
    for key, value in trainer.ghn.state_dict().items():
        assert torch.equal(value, just_before[key]), key

    fresh = GHNTrainer(small_ghn(), poisoned, val,
                       config(epochs=1, max_steps_per_epoch=None),
                       out_dir=tmp_path, progress=False)
    history = fresh.fit()
    assert history[-1]['skipped_steps'] == 1
    saved = GraphHyperNetwork.load(tmp_path / 'ghn.safetensors')
    assert any(not torch.equal(v, before[k])
               for k, v in saved.state_dict().items())
    assert all(torch.isfinite(v).all() for v in saved.state_dict().values())


def test_nan_weights_are_never_checkpointed(digits, tmp_path):
    train, val = digits
    trainer = GHNTrainer(small_ghn(), train, val, config(epochs=1),
                         out_dir=tmp_path, progress=False)
    trainer.fit()
    good = (tmp_path / 'checkpoint.pt').read_bytes()
    with torch.no_grad():
        next(trainer.ghn.parameters()).fill_(float('nan'))
    with pytest.raises(GhnlibError, match='NaN'):
        trainer._checkpoint()
    assert (tmp_path / 'checkpoint.pt').read_bytes() == good


def test_refuses_to_overwrite_or_mix_runs(digits, tmp_path):
    train, val = digits
    GHNTrainer(small_ghn(), train, val, config(epochs=1), out_dir=tmp_path,
               progress=False).fit()
    with pytest.raises(GhnlibError, match='resume'):
        GHNTrainer(small_ghn(), train, val, config(epochs=1),
                   out_dir=tmp_path, progress=False).fit()
    with pytest.raises(GhnlibError, match='lr'):
        GHNTrainer(small_ghn(), train, val, config(epochs=2, lr=0.5),
                   out_dir=tmp_path, progress=False).fit(resume=True)
    (tmp_path / 'checkpoint.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(GhnlibError, match='checkpoint.pt'):
        GHNTrainer(small_ghn(), train, val, config(epochs=2),
                   out_dir=tmp_path, progress=False).fit(resume=True)


def _ddp_worker(rank, world_size, port, out_dir, data, on_space=False):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    try:
        train, val = data
        if on_space:
            trainer = GHNTrainer(small_ghn(), train, val,
                                 space_config(batch_size=16, archs_per_step=2),
                                 progress=False)
        else:
            trainer = GHNTrainer(small_ghn(8), train, val,
                                 config(batch_size=16, archs_per_step=1,
                                        archs=('resnet20', 'resnet32')),
                                 progress=False)
        arch_ids, _ = trainer._step_randomness()
        trainer.train_step(*trainer._fetch(trainer._batches(0)[0]))
        torch.save({'ghn': {k: v.clone()
                            for k, v in trainer.ghn.state_dict().items()},
                    'archs': arch_ids},
                   os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def run_two_processes(digits, tmp_path, on_space=False):
    """Runs one training step as ranks 0 and 1 of a gloo group on a few
    images; returns what each rank saved."""
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    train, val = digits
    small = (TensorDataset(*(t[:64] for t in train.tensors)),
             TensorDataset(*(t[:32] for t in val.tensors)))
    mp.start_processes(_ddp_worker,
                       args=(2, port, str(tmp_path), small, on_space),
                       nprocs=2, start_method='spawn')
    return torch.load(tmp_path / 'rank0.pt'), torch.load(tmp_path / 'rank1.pt')


def test_distributed_ranks_agree_after_a_step(digits, tmp_path):
    rank0, rank1 = run_two_processes(digits, tmp_path)
    # Named architectures only: every process trains the same ones on its
    # shard of the images.
    assert rank0['archs'] == rank1['archs']
    initial = small_ghn(8).state_dict()
    changed = 0
    for key, value in rank0['ghn'].items():
        assert torch.equal(value, rank1['ghn'][key]), key
        changed += not torch.equal(value, initial[key])
    assert changed > len(initial) // 2


def test_architectures_may_be_modules(digits):
    from ghnlib.models import get_model
    train, val = digits
    module = get_model('resnet20')
    trainer = GHNTrainer(small_ghn(), train, val,
                         config(archs=(module, 'resnet32')), progress=False)
    assert trainer.models[0] is module
    assert trainer.config.to_dict()['archs'] == ['CifarResNet', 'resnet32']
    stats = trainer.train_step(*trainer._fetch(trainer._batches(0)[0]))
    assert stats['loss'] > 0 and not stats['skipped']


def space_config(**kwargs):
    options = dict(archs=(), space_archs=12, space_width=(8, 16),
                   space_depth=(1, 2), space_max_params=20_000,
                   archs_per_step=3, scale_outputs=True)
    options.update(kwargs)
    return config(**options)


def test_distributed_ranks_agree_on_the_space_with_other_architectures(
        digits, tmp_path):
    rank0, rank1 = run_two_processes(digits, tmp_path, on_space=True)
    assert len(rank0['archs']) == len(rank1['archs']) == 2
    assert not set(rank0['archs']) & set(rank1['archs'])
    initial = small_ghn().state_dict()
    changed = 0
    for key, value in rank0['ghn'].items():
        assert torch.equal(value, rank1['ghn'][key]), key
        changed += not torch.equal(value, initial[key])
    assert changed > len(initial) // 2


def test_space_training_draws_distinct_architectures_and_caches_graphs(
        digits, tmp_path):
    train, val = digits
    trainer = GHNTrainer(small_ghn(), train, val, space_config(),
                         out_dir=tmp_path, progress=False)
    assert trainer.num_archs == 12
    assert trainer.space.path.startswith(str(tmp_path / 'graphs'))
    seen = set()
    for step in range(4):
        trainer.global_step = step
        arch_ids, _ = trainer._step_randomness()
        assert len(set(arch_ids)) == 3
        seen |= set(arch_ids)
    assert len(seen) > 3
    again = GHNTrainer(small_ghn(), train, val, space_config(),
                       out_dir=tmp_path / 'other', progress=False)
    assert not again.space.loaded_from_cache
    cached = GHNTrainer(small_ghn(), train, val,
                        space_config(graph_cache=str(tmp_path / 'graphs')),
                        progress=False)
    assert cached.space.loaded_from_cache


def test_space_training_lowers_the_loss(digits):
    train, val = digits
    trainer = GHNTrainer(small_ghn(), train, val,
                         space_config(lr=3e-3, archs_per_step=12),
                         progress=False)
    images, labels = train.tensors[0][:64], train.tensors[1][:64]
    history = [trainer.train_step(images, labels) for _ in range(25)]
    assert not any(h['skipped'] for h in history)
    first = history[0]['cross_entropy']
    # Scaled outputs: near chance (ln 10) from the start, whatever the norm.
    assert first < 4
    assert sum(h['cross_entropy'] for h in history[-5:]) / 5 < 0.9 * first


def test_out_of_memory_steps_are_skipped_and_counted(digits, monkeypatch):
    train, val = digits
    trainer = GHNTrainer(small_ghn(), train, val, space_config(),
                         progress=False)
    before = ghn_state(trainer.ghn)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError('CUDA out of memory (simulated)')

    monkeypatch.setattr(MetaBatchLoss, 'forward', out_of_memory)
    stats = trainer.train_step(*trainer._fetch(trainer._batches(0)[0]))
    assert stats['skipped'] == 1.0
    assert trainer.skipped_steps == trainer.skipped_out_of_memory == 1
    for key, value in trainer.ghn.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_saved_ghn_carries_its_data_recipe_and_accuracy(tmp_path):
    from ghnlib.data import load_digits
    train = load_digits(image_size=8, channels=3, split='train')
    val = load_digits(image_size=8, channels=3, split='val')
    trainer = GHNTrainer(small_ghn(), train, val,
                         config(epochs=1, max_steps_per_epoch=1),
                         out_dir=tmp_path, progress=False)
    trainer.fit()
    meta = GraphHyperNetwork.load(tmp_path / 'ghn.safetensors').meta
    assert meta['data'] == {'dataset': train.name, 'channels': 3,
                            'image_size': 8, 'mean': list(train.mean),
                            'std': list(train.std)}
    assert meta['archs'] == ['resnet20'] and meta['val_arch'] == 'resnet20'
    assert meta['accuracy']['val_accuracy'] == \
        trainer.history[-1]['val_accuracy']
    assert 'space' not in meta


def test_named_architectures_are_in_every_step_of_a_mix(digits):
    train, val = digits
    trainer = GHNTrainer(small_ghn(), train, val,
                         space_config(archs=('resnet20', ), archs_per_step=2),
                         progress=False)
    assert trainer.num_archs == 13
    for step in range(5):
        trainer.global_step = step
        arch_ids, _ = trainer._step_randomness()
        assert arch_ids[0] == 0 and len(arch_ids) == 3
        assert all(1 <= i < 13 for i in arch_ids[1:])
