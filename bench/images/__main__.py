"""``python -m bench.images``: build every image, run the four containers, check them (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .commands import (
    BASE_IMAGE,
    BASE_PACKAGES,
    BASE_RELEASE,
    BUILD_ORDER,
    Buildah,
    build_command,
    choose_torch_index,
    debian_mirror,
    debootstrap_command,
    image_name,
    pip_conf_text,
)
from .run import run_containers

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "museum-dev"
DEFAULT_WORKDIR = Path("/var/tmp/artwork-matcher-images")
INSTALL_HINT = "apt-get update && apt-get install -y buildah debootstrap"
STAND_IN_LABEL = "org.opencontainers.image.description"


def check_tools(need_debootstrap: bool) -> None:
    """Root and the Debian tools are present, else exit with the install command."""
    if os.geteuid() != 0:
        raise SystemExit("bench.images needs root (buildah with the vfs driver and chroot isolation)")
    tools = ("buildah", "debootstrap") if need_debootstrap else ("buildah",)
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}; install with: {INSTALL_HINT}")


def ensure_base(buildah: Buildah, workdir: Path, *, pull: bool) -> str:
    """The base image in buildah's storage: already there, pulled, or a debootstrap stand-in. Says which."""
    if buildah.succeeds("inspect", "--type", "image", BASE_IMAGE):
        labels = buildah.image_config(BASE_IMAGE).get("Labels") or {}
        stand_in = str(labels.get(STAND_IN_LABEL, "")).startswith("stand-in")
        return f"{'stand-in ' if stand_in else ''}already in storage"
    if pull and buildah.succeeds("pull", "--retry", "0", BASE_IMAGE, timeout=600):
        return "pulled"
    check_tools(need_debootstrap=True)
    rootfs = workdir / "base-rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    apt = Path("/etc/apt")
    sources = [p.read_text() for p in [*apt.glob("sources.list"), *apt.glob("sources.list.d/*")] if p.is_file()]
    try:
        with open(workdir / "logs" / "debootstrap.log", "w") as log:
            subprocess.run(debootstrap_command(rootfs, debian_mirror(sources)), check=True, stdout=log, stderr=log)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        _commit_stand_in(buildah, rootfs)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return f"stand-in made with debootstrap {BASE_RELEASE} (no registry answered)"


def _commit_stand_in(buildah: Buildah, rootfs: Path) -> None:
    """Copy a root file system (owners kept) into a scratch container and commit it under the base's name."""
    container = buildah.output("from", "scratch")
    try:
        mount = buildah.output("mount", container)
        pack = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", mount, "--numeric-owner", "-xpf", "-"], stdin=pack.stdout, check=True)
        if pack.stdout is not None:
            pack.stdout.close()
        if pack.wait() != 0:
            raise RuntimeError(f"tar of {rootfs} failed")
        buildah.output("umount", container)
        description = f"stand-in for python:3.11-slim: debootstrap {BASE_RELEASE} minbase + {' '.join(BASE_PACKAGES)}"
        search_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        buildah.output("config", "--env", search_path, "--env", "LANG=C.UTF-8", "--cmd", "python3", container)
        buildah.output("config", "--label", f"{STAND_IN_LABEL}={description}", container)
        buildah.output("commit", "--rm", container, BASE_IMAGE)
    except BaseException:
        buildah.succeeds("rm", container)
        raise


def build_images(args: argparse.Namespace, buildah: Buildah) -> dict[str, tuple[float, str]]:
    """Build the chosen images; seconds and size per image. An image the new one replaces under its tag is removed."""
    pip_conf = args.workdir / "pip.conf"
    pip_conf.write_text(pip_conf_text(ca_bundle=args.ca_bundle is not None))
    torch_index = choose_torch_index(args.torch_index_url, _resolves)
    results: dict[str, tuple[float, str]] = {}
    for service in args.services:
        image = image_name(service, args.tag)
        previous = buildah.image_id(image)
        command = build_command(
            buildah,
            service,
            image=image,
            repo=REPO,
            pip_conf=pip_conf,
            ca_bundle=args.ca_bundle,
            torch_index_url=torch_index,
        )
        print(f"building {image} ...", flush=True)
        start = time.monotonic()
        log_path = args.workdir / "logs" / f"build-{service}.log"
        with open(log_path, "w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
        seconds = time.monotonic() - start
        if done.returncode != 0:
            raise SystemExit(f"building {image} failed after {seconds:.0f} s; see {log_path}")
        if previous and previous != buildah.image_id(image):
            buildah.succeeds("rmi", previous)
        results[service] = (seconds, buildah.image_size(image))
        print(f"  {image}: {seconds:.0f} s, {results[service][1]}", flush=True)
    return results


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def build_snapshot(data: Path, workdir: Path) -> tuple[Path, float]:
    """The museum-dev snapshot in the work directory, built or brought up to date by the project's CLI."""
    snapshot = workdir / "snapshot"
    command = [str(Path(sys.executable).parent / "artwork-matcher"), "index", "build", str(data / "objects")]
    command += ["--snapshot", str(snapshot)]
    if (data / "objects.csv").exists():
        command += ["--catalogue", str(data / "objects.csv")]
    start = time.monotonic()
    with open(workdir / "logs" / "index-build.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return snapshot, time.monotonic() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="logs, snapshot, stand-in rootfs")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="museum-dev layout: objects/, pictures/, ...")
    parser.add_argument(
        "--services", nargs="+", choices=BUILD_ORDER, default=list(BUILD_ORDER), help="to build and run"
    )
    parser.add_argument("--tag", default="local", help="tag of the images (localhost/artwork-matcher-<name>:<tag>)")
    parser.add_argument("--no-run", action="store_true", help="build only; run nothing")
    parser.add_argument("--no-pull", action="store_true", help="never try a registry for the base image")
    parser.add_argument("--ca-bundle", type=Path, default=_env_path("PIP_CERT"), help="CA bundle pip trusts")
    parser.add_argument("--torch-index-url", default="auto", help="CPU torch index; auto: PyTorch's, else PyPI")
    parser.add_argument("--photos", type=int, default=10, help="photos identified through the gateway")
    parser.add_argument("--seed", type=int, default=0, help="which photos (a seeded sample of labels.csv)")
    parser.add_argument("--min-right", type=int, help="right answers needed (default: 90 %% of --photos)")
    args = parser.parse_args(argv)
    if args.photos < 1:
        parser.error("--photos must be at least 1")
    if args.min_right is None:
        args.min_right = -(-9 * args.photos // 10)
    if not 0 <= args.min_right <= args.photos:
        parser.error(f"--min-right must lie in 0..{args.photos}")
    if args.ca_bundle is not None and not args.ca_bundle.is_file():
        parser.error(f"--ca-bundle {args.ca_bundle} is not a file")
    return args


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> int:
    """Build, run, check; 0 when everything passed."""
    args = parse_args(argv)
    check_tools(need_debootstrap=False)
    start = time.monotonic()
    (args.workdir / "logs").mkdir(parents=True, exist_ok=True)
    buildah = Buildah()
    base_start = time.monotonic()
    base = ensure_base(buildah, args.workdir, pull=not args.no_pull)
    print(f"base {BASE_IMAGE}: {base} ({time.monotonic() - base_start:.0f} s)", flush=True)
    builds = build_images(args, buildah)
    run = None
    if not args.no_run:
        snapshot, snapshot_s = build_snapshot(args.data, args.workdir)
        print(f"snapshot {snapshot} up to date in {snapshot_s:.0f} s", flush=True)
        run_start = time.monotonic()
        run = run_containers(buildah, args, snapshot)
        print(f"containers started, checked and removed in {time.monotonic() - run_start:.0f} s")
    print(f"\nbase {BASE_IMAGE}: {base}")
    for service, (seconds, size) in builds.items():
        print(f"  {image_name(service, args.tag):<44} {size:>9}  built in {seconds:4.0f} s")
    if run is not None:
        print(run.summary())
    print(f"total {time.monotonic() - start:.0f} s")
    return 0 if run is None or run.passed(args.min_right) else 1


if __name__ == "__main__":
    sys.exit(main())
