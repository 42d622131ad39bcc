"""``artwork-matcher infra verify --url`` against a real local stack serving the demo collection, and a snapshot
copied the way a backup restore copies it, served and verified.

The stack is this module's own (the demo paintings minus ``van_gogh_auvers``, real model, four processes on free ports);
the last test stops a backend, so it runs last.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.embeddings.model import TimmEmbedder
from tests.support import API_KEY, free_port
from tools.cli.build import build_collection
from tools.cli.demo import make_demo
from tools.cli.local_stack import SERVICES, LocalStack
from tools.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.model]
LEFT_OUT = "van_gogh_auvers"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The demo collection without :data:`LEFT_OUT`, served with an admin key."""
    root = tmp_path_factory.mktemp("verify")
    collection, catalogue, _ = make_demo(root)
    (collection / f"{LEFT_OUT}.png").unlink()
    embedder = TimmEmbedder()
    embedder.load()
    build_collection(collection, root / "snapshot", embedder, catalogue=catalogue)
    local = LocalStack(
        root / "snapshot",
        ports={name: free_port() for name in SERVICES},
        env={"GATEWAY_API_KEY": API_KEY},
        log_dir=root / "logs",
    )
    with local.running(timeout_s=180):
        yield local


def verify(url: str, *options: str) -> int:
    return main(["infra", "verify", "--url", url, *options])


def test_verify_passes_against_a_healthy_local_stack(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(stack.url("gateway")) == 0
    out = capsys.readouterr().out
    assert out.count("  PASS  ") == 4 and "FAIL" not in out
    assert "want hokusai_great_wave, got hokusai_great_wave" in out
    assert out.splitlines()[-1] == "all 4 checks passed"


def test_a_photo_of_the_stacks_own_collection_is_checked_with_photo_and_expect(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, queries = make_demo(tmp_path)
    photo = next(q.path for q in queries if q.expected == "leonardo_mona_lisa")
    assert verify(stack.url("gateway"), "--photo", str(photo), "--expect", "leonardo_mona_lisa") == 0
    assert verify(stack.url("gateway"), "--photo", str(photo), "--expect", "bruegel_harvesters") == 1
    assert capsys.readouterr().out.splitlines()[-1] == f"FAILED: identify {photo.name}"


def test_a_missing_built_in_reference_is_added_with_the_key_and_removed_after(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    url = stack.url("gateway")
    assert verify(url, "--sample", LEFT_OUT) == 1
    assert "--api-key would add it" in capsys.readouterr().out
    assert verify(url, "--sample", LEFT_OUT, "--api-key", API_KEY) == 0
    assert f"reference {LEFT_OUT} added for this check and removed" in capsys.readouterr().out
    assert httpx.get(f"{url}/objects/{LEFT_OUT}").status_code == 404


def test_a_snapshot_copied_as_a_backup_restore_copies_it_serves_and_passes_verify(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AWS Backup copies the files present at backup time into ``aws-backup-restore_<time>/``; a save in flight
    then shows as a hidden ``.<name>.<random>.tmp`` beside the previous whole file (files are written beside and
    renamed over), so the copy has whole files plus, at worst, a partial temporary one the services never read."""
    live = stack.snapshot
    restored = tmp_path / "aws-backup-restore_2026-12-04T03-00-00Z" / "snapshot"
    shutil.copytree(live, restored)
    whole = (live / "search.npz").read_bytes()
    (restored / ".search.npz.k3x9q1.tmp").write_bytes(whole[: len(whole) // 2])
    copy = LocalStack(restored, ports={name: free_port() for name in SERVICES}, log_dir=tmp_path / "logs")
    with copy.running(timeout_s=180):
        assert verify(copy.url("gateway")) == 0
        listed = httpx.get(f"{copy.url('gateway')}/objects").json()
        original = httpx.get(f"{stack.url('gateway')}/objects").json()
    assert listed == original
    assert capsys.readouterr().out.splitlines()[-1] == "all 4 checks passed"


def test_verify_fails_naming_the_health_row_when_a_backend_is_stopped(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.stop_service("geometric")
    assert verify(stack.url("gateway")) == 1
    out = capsys.readouterr().out
    assert "  FAIL  health (gateway and backends)" in out and "geometric unhealthy" in out
    assert out.splitlines()[-1].startswith("FAILED: health (gateway and backends)")
