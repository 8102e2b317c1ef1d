"""Installing docinbox the ways a user does: the README's set-up command on a checkout
(also after an interrupted first run), and a wheel installed into a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.acceptance.conftest import REPO, Workspace, receipt, wait_for


def project_copy(dest: Path) -> Path:
    """The files a clean clone has (what git tracks, as it is now in this checkout)."""
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, tracked):
        src, dst = REPO / rel, dest / rel
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            dst.chmod(src.stat().st_mode)
    return dest


def test_setup_rebuilds_a_venv_that_an_interrupted_run_left_broken(tmp_path: Path) -> None:
    project = project_copy(tmp_path / "docinbox")
    # What Ctrl-C during the first `scripts/setup` leaves: a venv without pip.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    setup = subprocess.run(
        [str(project / "scripts" / "setup"), "--no-apt"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "rebuilding .venv" in setup.stdout
    version = subprocess.run(
        [str(project / ".venv" / "bin" / "docinbox"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0 and version.stdout.startswith("docinbox ")


def test_a_wheel_in_a_fresh_venv_runs_the_readme_example(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("docinbox-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr

    workspace = Workspace(tmp_path / "work", bin_dir=venv / "bin")
    daemon = workspace.start()
    try:
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())
        wait_for(
            lambda: (workspace.outbox / "recibo" / "result.json").exists(),
            30,
            "outbox/recibo/result.json",
        )
        fields = {f["label"]: f["text"] for f in workspace.result("recibo")["fields"]}
        assert fields == {"fecha": "23/12/2025", "total": "45.99"}
        assert "1 document — 1 done" in workspace.docinbox("status").stdout
        assert daemon.stop() == 0
    finally:
        workspace.close()


def test_setup_uses_uv_when_present_and_run_installs_the_runtime_only(tmp_path: Path) -> None:
    """uv on PATH (installed from PyPI as users do); the set-up scripts/run makes has
    docinbox and its runtime, none of the dev tools; the versions are the constraints'."""
    tools = tmp_path / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, timeout=120)
    subprocess.run(
        [str(tools / "bin" / "python"), "-m", "pip", "install", "-q", "uv"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    project = project_copy(tmp_path / "docinbox")
    env = {**os.environ, "PATH": f"{tools / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    setup = subprocess.run(
        [str(project / "scripts" / "setup"), "--no-apt", "--runtime"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    python = project / ".venv" / "bin" / "python"
    assert (project / ".venv" / "pyvenv.cfg").read_text().find("uv = ") >= 0  # made by uv
    found = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('pytest') is None)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "True"  # no dev tools for scripts/run
    pins = dict(
        line.split("==")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    import json

    versions = json.loads(
        subprocess.run(
            [
                str(python),
                "-c",
                "import json, importlib.metadata as m; "
                "print(json.dumps({d.metadata['Name'].lower(): d.version"
                " for d in m.distributions()}))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for name in ("httpx", "desktop-notifier", "dbus-fast", "platformdirs", "pystray"):
        assert versions[name] == pins[name], name
    again = subprocess.run(
        [str(project / "scripts" / "setup"), "--no-apt", "--runtime"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (again.returncode, again.stdout) == (0, "")  # nothing to do the second time
