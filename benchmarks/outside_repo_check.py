"""Every notebook run as on Colab: alone in an empty folder, with the package installed the way
its set-up cell installs it (``pip install "git+<repository>"``), outside any clone, and the
course's files (checkpoints, results, figures, recordings) downloaded from the repository's raw
URLs, here served over local HTTP. Each notebook and solutions notebook runs in quick mode
(``STN_COURSE_QUICK=1``) in a fresh output folder; the check passes when every one runs to
its end.

    python benchmarks/outside_repo_check.py            # all notebooks (about 6 minutes on a 2-core CPU)
    python benchmarks/outside_repo_check.py --record   # and write results/outside_repo_check.json
    python benchmarks/outside_repo_check.py --only 03  # the notebooks whose names start with 03

It checks the committed tree (a clone of HEAD), so commit first. The datasets come from
``STN_COURSE_DATA`` (Colab downloads them; GTSRB's archive is not downloadable, see the README).
The package's dependencies are this environment's: ``--no-deps`` keeps pip from reinstalling
torch (on Colab the cell installs them, and Colab has torch already).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name): no line per request
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` over HTTP on a free local port; returns the server and its URL."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def install(clone: Path, site: Path) -> None:
    """``pip install "git+file://<clone>"`` into ``site`` (no dependencies: this environment's)."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    f"git+file://{clone}"], check=True)


def run_notebook(notebook: Path, name: str, work: Path, env: dict[str, str], timeout: int) -> dict:
    """Execute a copy of ``notebook`` (``name``: its path in the repository) alone in an empty
    folder; what happened, in a dict."""
    folder = work / notebook.stem
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / notebook.name)
    run_env = {**env, "STN_COURSE_OUTPUT": str(folder / "output"), "STN_COURSE_CHECKPOINTS": str(folder / "checkpoints")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                           f"--ExecutePreprocessor.timeout={timeout}", "--output", "executed.ipynb", notebook.name],
                          cwd=folder, env=run_env, capture_output=True, text=True)
    seconds = round(time.perf_counter() - start, 1)
    result = {"notebook": name, "ok": done.returncode == 0, "seconds": seconds}
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if "Error" in line or "error" in line]
        result["error"] = (lines[-1] if lines else done.stderr.strip().splitlines()[-1:] or ["?"])[:300]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write results/outside_repo_check.json")
    parser.add_argument("--only", default="", help="run only the notebooks whose names start with this")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may take")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stn_course_outside_") as tmp:
        tmp = Path(tmp)
        clone = tmp / "clone"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        install(clone, tmp / "site")
        (tmp / "serve" / "raw").mkdir(parents=True)
        (tmp / "serve" / "raw" / "main").symlink_to(clone)
        server, url = serve(tmp / "serve")
        env = {key: value for key, value in os.environ.items() if not key.startswith("STN_COURSE_")
               or key in ("STN_COURSE_DATA", "STN_COURSE_CACHE")}
        env.update({"PYTHONPATH": str(tmp / "site"), "STN_COURSE_QUICK": "1", "STN_COURSE_REPO_URL": url})
        where = subprocess.run([sys.executable, "-c", "import stn_course, stn_course.utils as u; "
                                "print(stn_course.__file__, u.has_repository())"],
                               cwd=tmp, env=env, capture_output=True, text=True, check=True).stdout.split()
        if where[1] != "False" or not where[0].startswith(str(tmp / "site")):
            raise SystemExit(f"the package imported is not the installed copy: {where}")
        notebooks = sorted((clone / "notebooks").glob(f"{args.only}*.ipynb")) + \
            sorted((clone / "notebooks" / "solutions").glob(f"{args.only}*.ipynb"))
        results = []
        for notebook in notebooks:
            results.append(run_notebook(notebook, str(notebook.relative_to(clone)), tmp / "runs", env, args.timeout))
            status = "ok    " if results[-1]["ok"] else "FAILED"
            print(f"{status} {results[-1]['seconds']:6.1f} s  {results[-1]['notebook']}"
                  + (f"\n       {results[-1]['error']}" if not results[-1]["ok"] else ""), flush=True)
        server.shutdown()
    failed = [r["notebook"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)} of {len(results)} notebooks ran to the end outside the repository"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    if args.record and not args.only:
        sys.path.insert(0, str(REPO))
        from stn_course.results import save_result

        save_result("outside_repo_check", {
            "what": "every notebook and solutions notebook in quick mode, alone in an empty folder, the package "
                    "installed with pip from a clone of HEAD (no dependencies), the course's files from the "
                    "repository's raw URLs served over local HTTP",
            "all_ok": not failed, "notebooks": results}, command="python benchmarks/outside_repo_check.py --record",
            record=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
