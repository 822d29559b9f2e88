import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from ghnlib.cli import main
from ghnlib.graph import ArchGraph


class HalfUsed(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(3 * 32 * 32, 4)
        self.spare = nn.Linear(4, 4)

    def forward(self, x):
        return self.used(x.flatten(1))


def test_convert_registry_model(capsys):
    assert main(['convert', 'resnet20']) == 0
    out = capsys.readouterr().out
    assert out.startswith('resnet20 (')
    assert 'input (1, 3, 32, 32)' in out
    assert 'conv 19' in out
    assert 'unsupported: 0' in out
    assert '(100.0%)' in out


def test_convert_torchvision_model_with_png_and_save(tmp_path, capsys):
    png, saved = tmp_path / 'g.png', tmp_path / 'g.pt'
    code = main(['convert', 'resnet18', '--input-shape', '1,3,64,64', '--png',
                 str(png), '--save', str(saved), '--ve-cutoff', '3'])
    assert code == 0
    out = capsys.readouterr().out
    assert 'ResNet, input (1, 3, 64, 64)' in out
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    graph = ArchGraph.load(saved)
    assert graph.op_counts()['conv'] == 20
    assert int(graph.virtual_edge_dist.max()) == 3


def test_convert_module_attr_and_strictness(capsys):
    assert main(['convert', 'test_cli:HalfUsed']) == 2
    err = capsys.readouterr().err
    assert "Cannot convert module 'spare'" in err
    assert main(['convert', 'test_cli:HalfUsed', '--no-strict']) == 0
    out = capsys.readouterr().out
    assert 'unsupported spare.weight: not used' in out
    assert 'parameter elements mapped / total: 12,292 / 12,312' in out


def test_bad_names_and_shapes_are_explained(capsys):
    assert main(['convert', 'resnet2O']) == 2
    assert "unknown model 'resnet2O'" in capsys.readouterr().err
    assert main(['convert', 'no_such_module:Net']) == 2
    assert "cannot import 'no_such_module:Net'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['convert', 'resnet20', '--input-shape', '1,3,a'])
    assert 'write it like 1,3,32,32' in capsys.readouterr().err
    assert main(['convert']) == 2
    assert 'give a MODEL' in capsys.readouterr().err


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, '-m', 'ghnlib', 'convert',
                             'small_cnn', '--input-shape', '1,1,28,28'],
                            capture_output=True, text=True, check=True)
    assert 'parameter elements mapped / total: 2,464 / 2,464' in result.stdout


def test_convert_onnx_file(tmp_path, capsys):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 2))
    path = tmp_path / 'm.onnx'
    torch.onnx.export(model.eval(), (torch.randn(1, 3, 8, 8), ), str(path),
                      dynamo=True, optimize=False, verbose=False)
    capsys.readouterr()
    assert main(['convert', '--onnx', str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(path))
    assert 'conv 1' in out and 'linear 1' in out and 'bias 2' in out
    assert 'unsupported: 0' in out
    assert main(['convert', 'resnet20', '--onnx', str(path)]) == 2
    assert 'not both' in capsys.readouterr().err


def test_init_writes_reproducible_weights(tmp_path, capsys):
    from safetensors.torch import load_file

    from ghnlib import GraphHyperNetwork

    torch.manual_seed(0)
    GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2,
                      noise_dim=4).save(tmp_path / 'ghn.safetensors')
    outs = []
    for seed, name in [(1, 'a'), (1, 'b'), (2, 'c')]:
        out = tmp_path / f'{name}.safetensors'
        assert main(['init', 'resnet20', '--ghn', str(tmp_path / 'ghn.safetensors'),
                     '--noise-seed', str(seed), '--out', str(out)]) == 0
        outs.append(load_file(str(out)))
    assert '269,722 parameters predicted' in capsys.readouterr().out
    a, b, c = outs
    assert torch.equal(a['conv1.weight'], b['conv1.weight'])
    assert not torch.equal(a['conv1.weight'], c['conv1.weight'])
    from ghnlib.models import get_model
    model = get_model('resnet20')
    model.load_state_dict(a)  # every key and shape fits
    (tmp_path / 'bad.safetensors').write_bytes(b'garbage')
    assert main(['init', 'resnet20', '--ghn', str(tmp_path / 'bad.safetensors'),
                 '--out', str(tmp_path / 'x.safetensors')]) == 2
    assert 'not a readable GraphHyperNetwork' in capsys.readouterr().err


def test_train_ghn_runs_and_resumes(tmp_path, capsys):
    out = tmp_path / 'run'
    args = ['train-ghn', '--dataset', 'digits', '--image-size', '8',
            '--archs', 'resnet20', '--hidden', '8', '--max-shape', '16,16,3,3',
            '--noise-dim', '4', '--batch-size', '16',
            '--max-steps-per-epoch', '2', '--no-progress', '--out', str(out)]
    assert main(args + ['--epochs', '1']) == 0
    assert 'resnet20 accuracy at initialisation' in capsys.readouterr().out
    assert main(args + ['--epochs', '1']) == 2  # never overwrites a run
    assert '--resume' in capsys.readouterr().err
    assert main(args + ['--epochs', '2', '--resume']) == 0
    lines = (out / 'log.csv').read_text().splitlines()
    assert lines[0].startswith('epoch,step,lr,train_loss')
    assert [line.split(',')[:2] for line in lines[1:]] == [['1', '2'],
                                                          ['2', '4']]
    assert main(args + ['--epochs', '3', '--resume', '--lr', '0.1']) == 2
    assert 'different run' in capsys.readouterr().err
    from ghnlib import GraphHyperNetwork
    ghn = GraphHyperNetwork.load(out / 'ghn.safetensors')
    assert ghn.noise_dim == 4 and ghn.config['max_shape'] == [16, 16, 3, 3]


def test_train_net_from_a_ghn_checkpoint(tmp_path, capsys):
    import json

    from safetensors.torch import load_file

    from ghnlib import GraphHyperNetwork
    from ghnlib.models import get_model

    torch.manual_seed(0)
    ckpt = tmp_path / 'ghn.safetensors'
    GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2,
                      noise_dim=4).save(ckpt)
    out = tmp_path / 'net'
    assert main(['train-net', '--arch', 'resnet20', '--init',
                 f'noise-ghn:{ckpt}', '--dataset', 'digits', '--image-size',
                 '8', '--epochs', '1', '--batch-size', '64', '--eval-every',
                 '4', '--no-progress', '--out', str(out)]) == 0
    assert 'test accuracy' in capsys.readouterr().out
    history = json.loads((out / 'history.json').read_text())
    assert history['steps'] == [0, 4, 8, 12, 16, 17]  # 1,078 images / 64
    assert history['recipe']['momentum'] == 0.9
    assert 0 <= history['test_accuracy'] <= 1
    model = get_model('resnet20')
    model.load_state_dict(load_file(str(out / 'weights.safetensors')))
    lines = (out / 'log.jsonl').read_text().splitlines()
    assert len(lines) == len(history['steps'])
    assert main(['train-net', '--init', 'vea:dir', '--epochs', '1', '--out',
                 str(tmp_path / 'x')]) == 2
    assert "Did you mean 'vae'?" in capsys.readouterr().err
    assert main(['train-net', '--init', 'vae', '--epochs', '1', '--out',
                 str(tmp_path / 'x')]) == 2
    assert "use 'vae:DIR'" in capsys.readouterr().err


def test_zoo_then_train_local_then_train_net(tmp_path, capsys):
    zoo = tmp_path / 'zoo'
    common = ['--dataset', 'digits', '--image-size', '8', '--no-progress']
    assert main(['zoo', '--arch', 'resnet20', '--n', '2', '--epochs', '1',
                 '--max-steps', '3', '--out', str(zoo)] + common) == 0
    assert '2 resnet20 in' in capsys.readouterr().out
    assert sorted(p.name for p in zoo.iterdir()) == [
        'member_00000.safetensors', 'member_00001.safetensors', 'zoo.json']
    local = tmp_path / 'vae'
    assert main(['train-local', str(zoo), '--arch', 'resnet20', '--kind',
                 'vae', '--epochs', '1', '--max-slices', '200',
                 '--image-size', '8', '--no-progress', '--out',
                 str(local)]) == 0
    assert '19 layer models written' in capsys.readouterr().out
    assert main(['train-net', '--init', f'vae:{local}', '--epochs', '1',
                 '--max-steps', '2', '--out', str(tmp_path / 'net')]
                + common) == 0
    assert f'resnet20 (vae:{local})' in capsys.readouterr().out


def test_experiment_command(tmp_path, capsys):
    import json

    from ghnlib import GraphHyperNetwork

    torch.manual_seed(0)
    ckpt = tmp_path / 'ghn.safetensors'
    GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2).save(ckpt)
    out = tmp_path / 'run'
    assert main(['experiment', '--dataset', 'digits', '--image-size', '8',
                 '--quick', '--inits', 'he,ghn', '--ghn', str(ckpt),
                 '--members', '2', '--epochs', '1', '--ensembles', '2',
                 '--ensemble-size', '2', '--severities', '2',
                 '--no-progress', '--out', str(out)]) == 0
    assert 'report.md' in capsys.readouterr().out
    results = json.loads((out / 'results.json').read_text())
    assert results['inits'] == ['he', 'ghn']
    assert results['config']['members'] == 2
    assert results['config']['zoo_members'] == 6  # the --quick preset
    assert list(results['ensembles']['he']) == ['0', '2']
    assert main(['experiment', '--inits', 'he,lsuv', '--out',
                 str(tmp_path / 'x')]) == 2
    assert 'unknown initialisations' in capsys.readouterr().err


def test_train_commands_read_a_cifar10_folder(tmp_path, capsys):
    import json
    import pickle

    import numpy as np

    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f'data_batch_{k}' for k in range(1, 6)] + ['test_batch']:
        batch = {b'data': rng.integers(0, 256, (12, 3072), dtype=np.uint8),
                 b'labels': [i % 10 for i in range(12)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / 'batches.meta').write_bytes(pickle.dumps(
        {b'label_names': [b'c%d' % i for i in range(10)]}))
    common = ['--dataset', 'cifar10', '--root', str(folder), '--no-progress']
    assert main(['train-ghn', '--archs', 'resnet20', '--hidden', '8',
                 '--epochs', '1', '--max-steps-per-epoch', '1',
                 '--batch-size', '8', '--out', str(tmp_path / 'ghn')]
                + common) == 0
    capsys.readouterr()
    assert main(['train-net', '--init', f'ghn:{tmp_path / "ghn" / "ghn.safetensors"}',
                 '--epochs', '1', '--batch-size', '16', '--out',
                 str(tmp_path / 'net')] + common) == 0
    history = json.loads((tmp_path / 'net' / 'history.json').read_text())
    # 60 training images less the validation share (1/12 of all 72): four
    # steps of 16.
    assert history['steps'][-1] == 4
    assert history['dataset'] == 'cifar10'
    assert main(['train-net', '--dataset', 'cifar10', '--root',
                 str(tmp_path / 'missing'), '--out', str(tmp_path / 'x')]) == 2
    assert 'missing' in capsys.readouterr().err


def test_hyperrep_from_a_zoo_kept_per_epoch(tmp_path, capsys):
    zoo = tmp_path / 'zoo'
    data = ['--dataset', 'digits', '--image-size', '28', '--channels', '1',
            '--no-progress']
    assert main(['zoo', '--arch', 'small_cnn', '--seeds', '4,7-8',
                 '--epochs', '2', '--batch-size', '64', '--lr', '0.05',
                 '--keep-epochs', '--out', str(zoo)] + data) == 0
    capsys.readouterr()
    assert sorted(p.name for p in zoo.glob('member_*')) == [
        'member_00004.safetensors', 'member_00007.safetensors',
        'member_00008.safetensors']
    out = tmp_path / 'hyperrep'
    assert main(['train-hyperrep', str(zoo), '--epochs', '2',
                 '--no-progress', '--out', str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert main(['train-net', '--arch', 'small_cnn', '--init',
                 f'hyperrep:{out}', '--epochs', '1', '--max-steps', '2',
                 '--out', str(tmp_path / 'net')] + data) == 0
    assert 'small_cnn (hyperrep:' in capsys.readouterr().out


def test_zoo_builds_the_network_for_the_dataset_images(tmp_path, capsys):
    # small_cnn defaults to 1×28×28; three-channel 24×24 digits get a
    # three-channel small CNN for 24×24 inputs.
    zoo = tmp_path / 'zoo'
    assert main(['zoo', '--arch', 'small_cnn', '--seeds', '3', '--epochs',
                 '1', '--max-steps', '2', '--image-size', '24',
                 '--no-progress', '--out', str(zoo)]) == 0
    assert '1 small_cnn in' in capsys.readouterr().out
    from ghnlib.train.zoo import load_zoo
    member, = load_zoo(str(zoo))
    assert member.seed == 3 and member.input_shape == (1, 3, 24, 24)
    assert member.model().features[0].in_channels == 3


@pytest.mark.parametrize('seeds', ['1,x', '5-3', '1,1-2', ''])
def test_zoo_refuses_bad_seed_lists(seeds, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['zoo', '--seeds', seeds, '--out', str(tmp_path)])
    assert 'seed' in capsys.readouterr().err
