"""The README's production walk-through, run line by line as printed, from a clean folder.

``/etc``, ``/var/lib/dialer`` and ``/opt/dialer`` are moved into a temporary folder (in the README's
lines and in the shipped files they are copied from), ``DIALER_CONFIG`` points at the moved
``/etc/dialer/dialer.toml`` (what the default path is to the commands), and the system tools the
test cannot run are stood in for by shell functions: ``useradd`` and ``systemctl`` are recorded,
``sudo -u USER`` and ``install -o/-g`` drop the user, and the package install is the test's own
environment (``/opt/dialer/bin/dialer`` is this checkout's ``dialer``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DIALER = Path(sys.executable).parent / "dialer"

SHIMS = r"""
set -e
python3() {
  if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then echo "venv $3" >> "$SHIMLOG"; return 0; fi
  command python3 "$@"
}
useradd() { echo "useradd $*" >> "$SHIMLOG"; }
systemctl() { echo "systemctl $*" >> "$SHIMLOG"; }
sudo() { if [ "$1" = "-u" ]; then echo "sudo -u $2" >> "$SHIMLOG"; shift 2; fi; "$@"; }
install() {
  local kept=()
  while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2;; *) kept+=("$1"); shift;; esac; done
  command install "${kept[@]}"
}
"""


def walkthrough() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Running it in production") :]
    block = section[section.index("```sh\n") + len("```sh\n") :]
    block = block[: block.index("```")]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_walkthrough_has_every_step() -> None:
    text = "\n".join(walkthrough())
    for step in (
        "pip install",
        "dialer.toml",
        "check-config",
        "migrate",
        "campaign create",
        "leads import",
        "dnc import --registry bloctel",
        "campaign start",
        "systemctl enable --now dialer",
    ):
        assert step in text, step


def test_readme_production_walkthrough_runs_as_printed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    moved = re.compile(r"/etc/|/var/lib/dialer|/opt/dialer")

    def move(text: str) -> str:
        return moved.sub(lambda m: f"{root}{m.group(0)}", text)

    # A clean checkout: the shipped files, their system paths moved like the README's.
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "config", checkout / "config")
    shutil.copytree(REPO / "systemd", checkout / "systemd")
    for shipped in (checkout / "config" / "dialer.toml", checkout / "systemd" / "dialer.service"):
        shipped.write_text(move(shipped.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    bin_dir = root / "opt" / "dialer" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "dialer").symlink_to(DIALER)
    (bin_dir / "pip").write_text('#!/bin/sh\necho "pip $*" >> "$SHIMLOG"\n', encoding="utf-8")
    (bin_dir / "pip").chmod(0o755)
    # What the operator brings: the lead list and the Bloctel file, in the import folder.
    imports = root / "var" / "lib" / "dialer" / "import"
    imports.mkdir(parents=True)
    (imports / "list.csv").write_bytes(
        "Telephone;Prenom\n06 12 34 56 78;Léa\n06 11 22 33 44;Hugo\n".encode("cp1252")
    )
    (imports / "bloctel.txt").write_text("0611223344\n", encoding="utf-8")

    lines = walkthrough()
    script = SHIMS + "".join(f"echo '@@@ {i}'\n{move(line)}\n" for i, line in enumerate(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    env.update(
        SHIMLOG=str(tmp_path / "shims.log"), DIALER_CONFIG=str(root / "etc" / "dialer" / "dialer.toml")
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output and "unexpected error" not in output, output
    steps = dict(re.findall(r"@@@ (\d+)\n(.*?)(?=@@@ |\Z)", done.stdout, re.S))
    said = {lines[int(i)]: text for i, text in steps.items()}

    def answer(fragment: str) -> str:
        return next(text for line, text in said.items() if fragment in line)

    assert "ok" in answer("check-config") and f"sqlite+aiosqlite:///{root}/var/lib/dialer/dialer.db" in output
    assert "upgraded from empty" in answer("dialer migrate")
    assert (root / "var" / "lib" / "dialer" / "dialer.db").is_file()
    assert "campaign 'spring' created" in answer("campaign create") and "registry bloctel" in answer(
        "campaign create"
    )
    assert "2 leads imported" in answer("leads import")
    assert "registry bloctel: 1 numbers loaded" in answer("dnc import")
    assert "campaign spring: draft -> running" in answer("campaign start")
    shims = (tmp_path / "shims.log").read_text(encoding="utf-8")
    assert "systemctl enable --now dialer" in shims and "useradd --system" in shims
    assert (root / "etc" / "dialer" / "ami.secret").read_text().strip() == "secret-of-manager_dialer.conf"

    # What `systemctl enable --now dialer` starts: the unit as installed, its paths moved.
    unit = (root / "etc" / "systemd" / "system" / "dialer.service").read_text(encoding="utf-8")
    pre = shlex.split(re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1))
    start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    migrated = subprocess.run(pre, env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0 and "is up to date" in migrated.stdout, migrated.stderr
    assert start[1:] == ["run", "--config", f"{root}/etc/dialer/dialer.toml"]
    checked = subprocess.run(
        [start[0], "check-config", start[3]], env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and "pbx       main: asterisk at 127.0.0.1:5038" in checked.stdout, (
        checked.stderr
    )
