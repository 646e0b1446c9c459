"""The Colab path, for real: the notebooks' install line in a fresh virtual environment, and a
shipped checkpoint downloaded through the package's own download function from a local server.

The fresh environment reuses this one's installed libraries (torch and the rest, through a
``.pth`` file pointing at a folder of links to them, leaving out the course package itself) so
that nothing is downloaded; the course package comes only from the ``git+file://`` clone.
"""
import functools
import http.server
import json
import os
import re
import site
import subprocess
import threading
import venv
from pathlib import Path

import pytest

from stn_course.utils import COLAB_SETUP_CELL, repo_root

from .markers import requires_mnist

#: a shipped run small enough to load quickly
SHIPPED_RUN = "mnist_st-cnn-aff_e5_s0"


def _fresh_environment(folder: Path) -> Path:
    """A virtual environment whose only course package will be the one pip installs; the
    libraries come from this environment, linked, except the course package."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    target = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                          text=True).strip())
    libraries = folder / "borrowed"
    libraries.mkdir()
    for site_packages in site.getsitepackages():
        for entry in Path(site_packages).iterdir():
            if entry.name.lower().startswith(("stn_course", "__editable__", "stn-course", "_stn_course")):
                continue
            if not (libraries / entry.name).exists():
                (libraries / entry.name).symlink_to(entry)
    (target / "borrowed.pth").write_text(f"{libraries}\n")
    return python


def _install_requirement(url: str) -> str:
    """The requirement of the notebooks' Colab cell, with the repository URL it reads from
    ``STN_COURSE_REPO_URL`` set to ``url``."""
    line = next(line for line in COLAB_SETUP_CELL.splitlines() if "%pip install" in line)
    return re.search(r'"([^"]+)"', line).group(1).replace("{repo}", url)


def _serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on stderr
        pass


LOAD_SCRIPT = """
import json, stn_course
from stn_course import experiments, recipes, utils
experiment, shipped = experiments.load_trained(recipes.recipe_config("mnist", "st-cnn-aff", 5), device="cpu")
print(json.dumps({"file": stn_course.__file__, "has_repository": utils.has_repository(), "shipped": shipped,
                   "accuracy": experiment.history.test_accuracy,
                   "downloaded": sorted(p.name for p in utils.shipped_checkpoint_dir().glob("*.pt"))}))
"""

#: notebook 02's run, where nothing serves the checkpoint: one line says so, then it trains
#: (stopped here, exit status 3, as training starts)
FAILED_DOWNLOAD_SCRIPT = """
import sys
from stn_course import experiments, recipes
experiments._train = lambda *args, **kwargs: sys.exit(3)
experiments.run_experiment(recipes.default_config("mnist", "st-cnn-aff", epochs=5), device="cpu")
"""


@pytest.mark.install
@requires_mnist
def test_colab_install_line_and_checkpoint_download_work_without_the_repository(tmp_path):
    import torch

    from stn_course.utils import data_root

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(repo_root()), str(clone)], check=True)
    python = _fresh_environment(tmp_path / "venv")
    environ = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    _install_requirement(f"file://{clone}")], check=True, env=environ, cwd=tmp_path,
                   capture_output=True, timeout=300)

    # the clone served at the layout of a GitHub repository: <REPO_URL>/raw/main/checkpoints/<run>.pt
    (tmp_path / "www" / "fork" / "raw").mkdir(parents=True)
    (tmp_path / "www" / "fork" / "raw" / "main").symlink_to(clone)
    server, address = _serve(tmp_path / "www")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    try:
        environ.update(STN_COURSE_REPO_URL=f"{address}/fork", STN_COURSE_DATA=str(data_root()),
                       STN_COURSE_CHECKPOINTS=str(tmp_path / "checkpoints"), STN_COURSE_OUTPUT=str(tmp_path / "out"))
        result = subprocess.run([python, "-c", LOAD_SCRIPT], capture_output=True, text=True, env=environ,
                                cwd=workdir, timeout=300)
    finally:
        server.shutdown()
        server.server_close()  # closed: a connection is refused, not left waiting
    # the server is gone, nothing answers at the URL, and this checkpoint folder has nothing downloaded
    environ.update(STN_COURSE_CHECKPOINTS=str(tmp_path / "checkpoints-offline"))
    failed = subprocess.run([python, "-c", FAILED_DOWNLOAD_SCRIPT], capture_output=True, text=True, env=environ,
                            cwd=workdir, timeout=300)
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout.splitlines() == [
        f"Could not download the shipped model {SHIPPED_RUN} from {address}/fork/raw/main/checkpoints/{SHIPPED_RUN}.pt"
        " (<urlopen error [Errno 111] Connection refused>): training it instead, 5 epochs."], failed.stdout
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    installed = Path(report["file"]).resolve()
    assert "site-packages" in installed.parts and repo_root() not in installed.parents
    assert clone not in installed.parents and not report["has_repository"]
    assert report["shipped"] and report["downloaded"] == [f"{SHIPPED_RUN}.pt"]
    shipped = torch.load(clone / "checkpoints" / f"{SHIPPED_RUN}.pt", weights_only=True)
    assert report["accuracy"] == shipped["history"]["test_accuracy"]
