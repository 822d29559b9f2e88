import dataclasses
import json
import pickle
import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from ghnlib import GraphHyperNetwork
from ghnlib.cli import COMMANDS, main, parse
from ghnlib.cli.commands import GHNOptions, HyperrepOptions, LocalOptions
from ghnlib.cli.constructors import field_docs
from ghnlib.cli.data_options import DataOptions
from ghnlib.experiments import ExperimentConfig
from ghnlib.graph import ArchGraph
from ghnlib.models import get_model
from ghnlib.train import GHNTrainingConfig, SGDRecipe
from ghnlib.zoo import load_zoo

ROOT = Path(__file__).resolve().parents[1]


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


def test_convert_torchvision_model_with_png_and_save(torchvision, tmp_path,
                                                    capsys):
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
            '--max-steps-per-epoch', '2', '--noise-draws', '1',
            '--calibration-batches', '1', '--no-amp', '--no-progress',
            '--out', str(out)]
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
    # The fields no earlier flag could set reach the trainer's config.
    config = torch.load(out / 'checkpoint.pt', weights_only=False)['config']
    assert (config['noise_draws'], config['calibration_batches'],
            config['amp']) == (1, 1, False)
    assert main(args + ['--epochs', '3', '--resume', '--noise-draws',
                        '2']) == 2
    assert 'noise_draws' in capsys.readouterr().err
    ghn = GraphHyperNetwork.load(out / 'ghn.safetensors')
    assert ghn.noise_dim == 4 and ghn.config['max_shape'] == [16, 16, 3, 3]


def test_train_net_from_a_ghn_checkpoint(tmp_path, capsys):
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
    torch.manual_seed(0)
    ckpt = tmp_path / 'ghn.safetensors'
    GraphHyperNetwork(hidden_channels=8, decoder_channels=16, rank=2).save(ckpt)
    out = tmp_path / 'run'
    assert main(['experiment', '--dataset', 'digits', '--image-size', '8',
                 '--quick', '--inits', 'he,ghn', '--ghn', str(ckpt),
                 '--members', '2', '--epochs', '1', '--ensembles', '2',
                 '--ensemble-size', '2', '--severities', '2',
                 '--corruptions', 'gaussian_noise,contrast', '--lr', '0.05',
                 '--zoo-epochs', '2', '--local-epochs', '1', '--max-slices',
                 '300', '--no-progress', '--out', str(out)]) == 0
    assert 'report.md' in capsys.readouterr().out
    results = json.loads((out / 'results.json').read_text())
    assert results['inits'] == ['he', 'ghn']
    config = results['config']
    assert config['members'] == 2
    assert config['zoo_members'] == 6  # the --quick preset
    assert config['corruptions'] == ['gaussian_noise', 'contrast']
    assert (config['lr'], config['zoo_epochs'], config['local_epochs'],
            config['max_slices']) == (0.05, 2, 1, 300)
    assert list(results['ensembles']['he']) == ['0', '2']
    assert main(['experiment', '--inits', 'he,lsuv', '--out',
                 str(tmp_path / 'x')]) == 2
    assert 'unknown initialisations' in capsys.readouterr().err


def test_train_commands_read_a_cifar10_folder(tmp_path, capsys):
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
    member, = load_zoo(str(zoo))
    assert member.seed == 3 and member.input_shape == (1, 3, 24, 24)
    assert member.model().features[0].in_channels == 3


@pytest.mark.parametrize('seeds', ['1,x', '5-3', '1,1-2', ''])
def test_zoo_refuses_bad_seed_lists(seeds, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['zoo', '--seeds', seeds, '--out', str(tmp_path)])
    assert 'seed' in capsys.readouterr().err


# Every config a command runs with: (command, its required arguments, the
# field of the command holding the config, the config's class).
CONFIGS = [
    ('train-ghn', ['--out', 'x'], 'config', GHNTrainingConfig),
    ('train-ghn', ['--out', 'x'], 'ghn', GHNOptions),
    ('train-ghn', ['--out', 'x'], 'data', DataOptions),
    ('train-net', ['--out', 'x'], 'recipe', SGDRecipe),
    ('train-net', ['--out', 'x'], 'data', DataOptions),
    ('zoo', ['--out', 'x'], 'recipe', SGDRecipe),
    ('zoo', ['--out', 'x'], 'data', DataOptions),
    ('train-local', ['zoo', '--out', 'x'], 'fit', LocalOptions),
    ('train-hyperrep', ['zoo', '--out', 'x'], 'fit', HyperrepOptions),
    ('experiment', ['--out', 'x'], 'config', ExperimentConfig),
]
# Values of fields that accept only a few strings.
CHOSEN = {'milestone_unit': 'step', 'dataset': 'cifar10'}


def _other_value(name, annotation, default):
    """A value of the field's type that is not its default, and its
    command-line form."""
    flag = '--' + name.replace('_', '-')
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union:
        annotation = args[0]
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return not default, [flag if not default else f'--no-{flag[2:]}']
    if annotation is int:
        return (default or 0) + 3, [flag, str((default or 0) + 3)]
    if annotation is float:
        value = default / 2 if default else 0.25
        return value, [flag, str(value)]
    if annotation is str:
        value = CHOSEN.get(name, 'probe')
        return value, [flag, value]
    if origin in (tuple, list, typing.Sequence.__origin__):
        item = typing.get_args(annotation)[0]
        value = {int: (1, 2), float: (0.25, 0.75), str: ('a', 'b')}[item]
        return value, [flag, ','.join(str(v) for v in value)]
    raise AssertionError(f'no test value for {name}: {annotation}')


@pytest.mark.parametrize('command,required,attr,config', CONFIGS,
                         ids=[f'{c[0]}-{c[2]}' for c in CONFIGS])
def test_every_config_field_has_a_flag_that_reaches_the_config(
        command, required, attr, config):
    hints = typing.get_type_hints(config)
    fields = dataclasses.fields(config)
    assert fields
    for field in fields:
        default = getattr(getattr(parse([command] + required), attr),
                          field.name)
        value, args = _other_value(field.name, hints[field.name], default)
        parsed = getattr(parse([command] + required + args), attr)
        got = getattr(parsed, field.name)
        if isinstance(value, tuple):
            got = tuple(got)
        assert got == value, (field.name, args)


@pytest.mark.parametrize('command,required,attr,config', CONFIGS,
                         ids=[f'{c[0]}-{c[2]}' for c in CONFIGS])
def test_help_documents_every_config_field(command, required, attr, config,
                                           capsys):
    with pytest.raises(SystemExit):
        main([command, '--help'])
    # The help is laid out in boxes; their borders and line breaks aside,
    # it is running text.
    text = ' '.join(re.sub(r'[│╭╰─╮╯]', ' ', capsys.readouterr().out).split())
    for field in dataclasses.fields(config):
        assert '--' + field.name.replace('_', '-') in text, field.name
    if config is GHNTrainingConfig:
        assert ('--calibration-batches INT Training batches used to '
                'recompute the batch-norm statistics') in text
        assert 'weights untouched). (default: 4)' in text


@pytest.mark.parametrize('config', [
    ExperimentConfig, GHNTrainingConfig, SGDRecipe, DataOptions, GHNOptions,
    LocalOptions, *COMMANDS.values()], ids=lambda config: config.__name__)
def test_every_flag_has_a_help_text(config):
    docs = field_docs(config)
    undocumented = [field.name for field in dataclasses.fields(config)
                    if not docs.get(field.name)]
    assert undocumented == [], f'add them to the Args: of {config.__name__}'


def test_help_texts_lose_markup_and_the_repeated_default():
    docs = field_docs(SGDRecipe)
    assert docs['lr'] == 'Initial learning rate \\eta_0.'
    assert docs['milestone_unit'].startswith("'epoch' or 'step' (optimizer")
    assert 'default' not in ' '.join(docs.values())


def test_the_generated_options_follow_their_functions():
    ghn = {f.name for f in dataclasses.fields(GHNOptions)}
    assert ghn | {'num_classes'} == set(
        GraphHyperNetwork.__init__.__code__.co_varnames[
            1:GraphHyperNetwork.__init__.__code__.co_argcount])
    assert {f.name for f in dataclasses.fields(HyperrepOptions)} >= {
        'epochs', 'lr', 'latent_dim', 'permute', 'min_epoch', 'd_model'}
    assert {f.name for f in dataclasses.fields(LocalOptions)} == {
        'prune_fraction', 'epochs', 'max_slices', 'prior', 'seed'}


def test_earlier_flag_names_still_work():
    config = parse(['experiment', '--cifar10c', 'c10c', '--out', 'x']).config
    assert config.cifar10c_root == 'c10c'
    assert parse(['train-ghn', '--hidden', '8', '--out', 'x']
                 ).ghn.hidden_channels == 8
    zoo = parse(['zoo', '--seed', '5', '--n', '2', '--out', 'x'])
    assert (zoo.first_seed, zoo.n) == (5, 2)
    local = parse(['train-local', 'zoo', '--no-prior', '--out', 'x'])
    assert local.fit.prior is False
    hyperrep = parse(['train-hyperrep', 'zoo', '--no-permute', '--out', 'x'])
    assert hyperrep.fit.permute is False
    convert = parse(['convert', 'resnet20', '--input-shape', '1x3x8x8',
                     '--no-strict'])
    assert (convert.input_shape, convert.strict) == ((1, 3, 8, 8), False)


def test_presets_give_way_to_given_flags():
    quick = parse(['experiment', '--quick', '--members', '25', '--out', 'x'])
    assert quick.config == ExperimentConfig.quick(members=25)
    assert parse(['experiment', '--out', 'x']).config == ExperimentConfig()
    assert parse(['experiment', '--quick', '--no-quick', '--out', 'x']
                 ).config == ExperimentConfig()
    for command in ('train-net', 'zoo'):
        pcam = parse([command, '--dataset', 'pcam', '--epochs', '3',
                      '--out', 'x']).recipe
        assert pcam == SGDRecipe.pcam(epochs=3)
        assert parse([command, '--out', 'x']).recipe == SGDRecipe.cifar10()


def test_a_refused_config_is_explained(capsys):
    assert main(['train-net', '--milestones', '3', '--out', 'x']) == 2
    assert 'must have the same length' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['train-ghn', '--milestones', '3,x', '--out', 'x'])
    assert 'write it like INT,...' in capsys.readouterr().err


def _documented_commands():
    """Every complete ``ghnlib COMMAND …`` line in the documentation: the
    lines of fenced code blocks, and inline code that names an --out."""
    pattern = re.compile(r'(?:^|[\s/])ghnlib ((?:%s)\b.*)' % '|'.join(
        map(re.escape, COMMANDS)))
    found = []
    for path in ['README.md', 'ghnlib/pretrained/README.md',
                 'benchmarks/RESULTS.md', *sorted(
                     str(p.relative_to(ROOT))
                     for p in (ROOT / 'examples').rglob('*.md'))]:
        text = (ROOT / path).read_text()
        blocks = re.findall(r'```[^\n]*\n(.*?)```', text, flags=re.S)
        lines = [line for block in blocks
                 for line in block.replace('\\\n', ' ').splitlines()]
        prose = re.sub(r'```.*?```', '', text, flags=re.S)
        lines += [' '.join(span.split()) for span in
                  re.findall(r'`([^`]+)`', prose) if '--out' in span]
        for line in lines:
            match = pattern.search(line)
            if match:
                command = re.split(r'\s#', match.group(1))[0]
                found.append((path, shlex.split(command)))
    return found


def test_the_documented_command_lines_parse():
    documented = _documented_commands()
    assert {args[0] for _, args in documented} >= {
        'convert', 'init', 'train-ghn', 'train-net', 'zoo', 'train-local',
        'train-hyperrep', 'experiment'}
    for path, args in documented:
        command = parse(args)
        assert isinstance(command, COMMANDS[args[0]]), (path, args)
