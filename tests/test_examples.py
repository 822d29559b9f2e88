import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / 'examples'


def test_init_with_ghn_example():
    result = subprocess.run([sys.executable, str(EXAMPLES / 'init_with_ghn.py')],
                            capture_output=True, text=True, check=True)
    assert 'mobilenet_v3_small initialised: torch.Size([2, 10])' in result.stdout
    assert 'AudioNet initialised: torch.Size([2, 10])' in result.stdout


def test_demo(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / 'demo.py'), '--out',
                             str(tmp_path)], capture_output=True, text=True,
                            check=True)
    out = result.stdout
    assert out.count('every parameter placed: True') == 3
    assert 'pairwise cosine similarity of the five samples' in out
    line = next(l for l in out.splitlines()
                if l.startswith('ResNet-20 on held-out digits, no training'))
    ghn_part, he_part = line.split('Noise GHN samples ')[1].split('; He ')
    ghn_accuracy = [float(a) for a in ghn_part.split()]
    he_accuracy = [float(a) for a in he_part.split(' (')[0].split()]
    assert len(ghn_accuracy) == len(he_accuracy) == 5
    # The shipped Noise GHN never saw a ResNet-20, yet its weights work.
    assert min(ghn_accuracy) > 0.7 > max(he_accuracy)
    for name in ('resnet20_graph.png', 'noise_ghn_samples.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG'
