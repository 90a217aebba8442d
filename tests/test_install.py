"""`pip install .` makes a package that works from any folder: the library with its bundled model,
and the commands as console scripts."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pip_install_works_outside_the_clone(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(ROOT)], check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import sedd_core; from sedd_core import SEDDPipeline; pipe = SEDDPipeline.from_pretrained(); "
            "print(sedd_core.__file__); print(pipe.infill('The river [[3]] sea.', seed=0)[0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(str(target)) and "The river" in out.stdout  # the installed copy, its own model
    for script in ("sedd-editor", "sedd-sample", "sedd-train", "sedd-evaluate"):
        run = subprocess.run([str(target / "bin" / script), "--help"], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0 and "usage" in run.stdout, (script, run.stderr[-1000:])
