"""SFTP and FTP backends vs MLflow's SFTP and FTP artifact repositories, same servers, same run.

    uv run python benchmarks/sftp_ftp.py [--size-mib 256] [--files 1000] [--repeat 3] [--dir DIR]

Starts OpenSSH's sshd and vsftpd on 127.0.0.1 (both from Debian: scripts/install
installs them; needs root), then times uploading and downloading a large file and a
tree of 10 KiB files with mlartifacts and with MLflow. MLflow's SFTP store needs
pysftp, which no longer imports with paramiko >= 4, so MLflow runs in a throw-away
virtual environment built here with uv (mlflow-skinny, pysftp, paramiko<4; kept
in tools/venvs/mlflow-sftp-ftp, git-ignored). Both sides log in with the same RSA key and read
the same ~/.ssh (a temporary HOME): pysftp can load neither Ed25519 keys nor
``[host]:port`` known_hosts entries.

As in local_disk.py: each measurement is its own child process (interpreter start-up
included), after a sync, tools interleaved across repeats, the median shown; peak RSS
is the child's VmHWM. The start-up row is what every run pays before moving a byte:
the interpreter, imports and opening the store (MLflow's SFTP store connects eagerly).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, make_inputs, measure

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, tcp_open, wait_for

MLFLOW_REQUIREMENTS = ["mlflow-skinny", "pysftp", "paramiko<4"]
MLFLOW_VENV = Path(__file__).resolve().parents[1] / "tools" / "venvs" / "mlflow-sftp-ftp"

WORKER = r"""
import os, sys
tool, op, uri, src, dst = sys.argv[1:6]
if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    with ArtifactStore(uri) as store:
        if op == "start-up":
            pass
        elif op == "upload-file":
            store.log_artifact(src)
        elif op == "upload-tree":
            store.log_artifacts(src, "tree")
        else:
            store.download_artifacts(src, dst)
else:
    if uri.startswith("sftp"):
        from mlflow.store.artifact.sftp_artifact_repo import SFTPArtifactRepository as Repo
    else:
        from mlflow.store.artifact.ftp_artifact_repo import FTPArtifactRepository as Repo
    repo = Repo(uri)  # MLflow's SFTP store connects here (a pool of pysftp connections)
    if op == "start-up":
        pass
    elif op == "upload-file":
        repo.log_artifact(src)
    elif op == "upload-tree":
        repo.log_artifacts(src, "tree")
    else:
        repo.download_artifacts(src, dst)
"""


def mlflow_python() -> str:
    """The python of a cached venv with MLflow's SFTP/FTP stores and their dependencies."""
    python = MLFLOW_VENV / "bin" / "python"
    probe = "import mlflow.store.artifact.sftp_artifact_repo, mlflow.store.artifact.ftp_artifact_repo, pysftp"
    if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0:
        return str(python)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    print(f"building {MLFLOW_VENV} ({' '.join(MLFLOW_REQUIREMENTS)}) ...", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(MLFLOW_VENV)], check=True, env=env)
    env["VIRTUAL_ENV"] = str(MLFLOW_VENV)
    subprocess.run([uv, "pip", "install", "--quiet", *MLFLOW_REQUIREMENTS], check=True, env=env)
    return str(python)


def start_sshd(base: Path, home: Path) -> tuple[ServerProcess, int, Path]:
    sshd = find_executable("sshd", "/usr/sbin")
    if sshd is None:
        raise SystemExit("sshd not found: scripts/install installs openssh-server")
    root = base / "sftp-root"
    root.mkdir()
    host_key = base / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    key = ssh / "id_rsa"  # RSA: pysftp cannot load Ed25519 key files
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\nPidFile {base}/sshd.pid\n"
        f"AuthorizedKeysFile {key}.pub\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nForceCommand internal-sftp\n"
    )
    kind, blob = (host_key.with_suffix(".pub")).read_text().split()[:2]
    # Both forms: OpenSSH's [host]:port (ours) and the bare host pysftp looks up.
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{port} {kind} {blob}\n127.0.0.1 {kind} {blob}\n")
    (ssh / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    process = ServerProcess([sshd, "-D", "-e", "-f", str(config)], base / "sshd.log").start()
    wait_for(tcp_open(port), 20, proc=process, what="sshd")
    return process, port, root


def start_vsftpd(base: Path) -> tuple[ServerProcess, int, Path]:
    vsftpd = find_executable("vsftpd", "/usr/sbin")
    if vsftpd is None:
        raise SystemExit("vsftpd not found: scripts/install installs it")
    anon_root = base / "ftp-root"
    anon_root.mkdir(mode=0o755)
    (anon_root / "pub").mkdir()
    shutil.chown(anon_root / "pub", "ftp", "ftp")
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    port, pasv = free_port(), random.randrange(40000, 60000, 200)
    config = base / "vsftpd.conf"
    config.write_text(
        f"listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n"
        f"seccomp_sandbox=NO\npasv_enable=YES\npasv_min_port={pasv}\npasv_max_port={pasv + 199}\n"
        "pasv_address=127.0.0.1\nconnect_from_port_20=NO\nsecure_chroot_dir=/var/run/vsftpd/empty\n"
        "local_enable=NO\nwrite_enable=YES\nanonymous_enable=YES\nno_anon_password=YES\n"
        f"anon_root={anon_root}\nanon_upload_enable=YES\nanon_mkdir_write_enable=YES\n"
        "anon_other_write_enable=YES\nanon_world_readable_only=NO\nanon_umask=022\nxferlog_enable=NO\n"
    )
    process = ServerProcess([vsftpd, str(config)], base / "vsftpd.log").start()
    wait_for(tcp_open(port), 20, proc=process, what="vsftpd")
    return process, port, anon_root / "pub"


def stop_with_sessions(process: ServerProcess) -> None:
    found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    process.stop()
    for pid in found:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: sshd and vsftpd need it")

    theirs = mlflow_python()
    base = Path(tempfile.mkdtemp(prefix="mlartifacts-bench-", dir=args.dir))
    base.chmod(0o755)
    servers: list[ServerProcess] = []
    try:
        big, tree = make_inputs(str(base), args.size_mib, args.files)
        home = base / "home"
        sshd, ssh_port, sftp_root = start_sshd(base, home)
        servers.append(sshd)
        vsftpd, ftp_port, ftp_root = start_vsftpd(base)
        servers.append(vsftpd)
        env = {k: v for k, v in child_env().items() if not k.startswith(("MLARTIFACTS_", "VIRTUAL_ENV"))}
        env.update(HOME=str(home), MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
        user = os.environ.get("USER") or "root"
        protocols = {
            "SFTP (sshd)": (sftp_root, f"sftp://{user}@127.0.0.1:{ssh_port}{sftp_root}"),
            "FTP (vsftpd)": (ftp_root, f"ftp://127.0.0.1:{ftp_port}/pub"),
        }
        tools = {"mlartifacts": sys.executable, "mlflow": theirs}
        print(f"{'case':<34} {'tool':<12} {'seconds':>9} {'rate':>15} {'peak RSS':>11}  speed")
        for protocol, (local_root, uri_root) in protocols.items():
            stored = local_root / "stored"
            stored.mkdir()
            shutil.copy(big, stored / "big.bin")
            shutil.copytree(tree, stored / "tree")
            subprocess.run(["chmod", "-R", "a+rX", str(stored)], check=True)
            if protocol.startswith("FTP"):
                subprocess.run(["chown", "-R", "ftp:ftp", str(stored)], check=True)
            cases = [
                ("start-up (import, open store)", 1, "runs/s", "start-up", ""),
                (f"upload {args.size_mib} MiB file", args.size_mib, "MiB/s", "upload-file", big),
                (f"download {args.size_mib} MiB file", args.size_mib, "MiB/s", "download", "big.bin"),
                (f"upload {args.files} x 10 KiB tree", args.files, "files/s", "upload-tree", tree),
                (f"download {args.files} x 10 KiB tree", args.files, "files/s", "download", "tree"),
            ]
            print(protocol)
            for title, amount, unit, op, src in cases:
                times: dict[str, list[float]] = {tool: [] for tool in tools}
                rss: dict[str, list[float]] = {tool: [] for tool in tools}
                for _ in range(args.repeat):
                    for tool, python in tools.items():
                        name = uuid.uuid4().hex
                        uri = f"{uri_root}/{name}" if op.startswith("upload") else f"{uri_root}/stored"
                        dst = base / "dst" / name
                        dst.mkdir(parents=True)
                        cmd = [python, "-c", WORKER, tool, op, uri, str(src), str(dst)]
                        seconds, peak = measure(cmd, env)
                        times[tool].append(seconds)
                        rss[tool].append(peak)
                        shutil.rmtree(dst)
                        shutil.rmtree(local_root / name, ignore_errors=True)
                medians = {tool: statistics.median(values) for tool, values in times.items()}
                for tool in tools:
                    ratio = medians["mlflow"] / medians[tool]
                    print(
                        f"  {title:<32} {tool:<12} {medians[tool]:>9.2f} {amount / medians[tool]:>9.1f} "
                        f"{unit:<5}{max(rss[tool]):>7.1f} MiB  {ratio:.2f}x mlflow"
                    )
            print()
    finally:
        for process in servers:
            stop_with_sessions(process)
        shutil.rmtree(base, ignore_errors=True)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
