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
    assert 'logits finite True' in out
    for name in ('resnet20_graph.png', 'noise_ghn_samples.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG'
