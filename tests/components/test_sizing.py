"""components/sizing.py: task memory from the expected collection size, and what the stacks get from it."""

from __future__ import annotations

import json

import pytest

from components.config import ServiceSizing, sized_for
from components.plan.recorder import Plan
from components.sizing import (
    SEARCH_COMPRESSED_BYTES,
    SEARCH_EXACT_BYTES,
    geometric_memory_mib,
    search_memory_mib,
    task_memory_mib,
    vote_budget,
)
from services.collection.vector_file import COMPRESS_ABOVE
from services.geometric.settings import VOTE_MAX_DESCRIPTORS


def sizing(name: str, cpu: int = 256, memory: int = 512, target: int = 70) -> ServiceSizing:
    return ServiceSizing(name, 8002, cpu, memory, 1, 2, 70, target, 60, 300, 0, "")


def env_of(plan: Plan, service: str) -> dict[str, str]:
    task = plan.named(f"{plan.project}-{plan.stack}-{service}-task").inputs
    return {e["name"]: e["value"] for e in json.loads(str(task["containerDefinitions"]))[0]["environment"]}


def test_search_memory_grows_per_artwork_and_drops_to_the_compressed_cost_at_the_compression_size():
    below, above = search_memory_mib(COMPRESS_ABOVE - 1), search_memory_mib(COMPRESS_ABOVE)
    assert above < below  # 1280 bytes a vector instead of 5 KiB
    assert search_memory_mib(2_000_000) - search_memory_mib(1_000_000) == pytest.approx(
        1_000_000 * SEARCH_COMPRESSED_BYTES / 2**20, abs=1
    )
    assert search_memory_mib(20_000) - search_memory_mib(10_000) == pytest.approx(
        10_000 * SEARCH_EXACT_BYTES / 2**20, abs=1
    )


def test_geometric_memory_holds_the_vote_index_only_within_its_budget():
    small = geometric_memory_mib(1_000)  # 500 000 descriptors voted
    at_budget = geometric_memory_mib(VOTE_MAX_DESCRIPTORS // 500)
    beyond = geometric_memory_mib(VOTE_MAX_DESCRIPTORS // 500 + 1)  # no vote index: ids and offsets only
    assert small < at_budget and beyond < small
    assert geometric_memory_mib(1_000_000) < 1024  # a million artworks fit a 1 GB task without the vote index


def test_a_task_gets_the_smallest_fargate_memory_keeping_the_need_under_its_target():
    assert task_memory_mib(700, 70, 512, range(512, 2049, 512)) == 1024
    assert task_memory_mib(100, 70, 1536, range(512, 2049, 512)) == 1536  # configured memory is a floor
    assert task_memory_mib(1500, 70, 512, range(512, 2049, 512)) is None


def test_the_configured_memory_is_raised_for_a_large_collection_and_kept_for_a_small_one():
    assert sized_for(sizing("search"), 1_000).memory == 512
    grown = sized_for(sizing("search"), 400_000)
    assert grown.memory == 1536 and grown.memory * 0.7 >= search_memory_mib(400_000)
    assert sized_for(sizing("gateway"), 10_000_000).memory == 512  # the gateway does not grow with the collection


def test_a_collection_beyond_the_largest_task_is_refused_naming_the_keys_and_sharding():
    with pytest.raises(ValueError, match=r"expectedArtworks=5000000 .* searchCpu=256 .* shard"):
        sized_for(sizing("search"), 5_000_000)


def test_the_vote_budget_is_what_the_task_has_left_after_process_and_references():
    assert vote_budget(4096, 80, 100_000) == pytest.approx(
        (4096 * 0.8 - 180 - 100_000 * 200 / 2**20) * 2**20 / 136, abs=1
    )
    assert vote_budget(200, 80, 0) == 0  # 160 MiB: less than the process itself


def test_stacks_pass_the_expected_size_to_search_and_the_vote_budget_to_geometric(
    demo_plan: Plan, production_plan: Plan
) -> None:
    assert env_of(production_plan, "search")["SEARCH_EXPECTED_SIZE"] == "100000"
    assert env_of(demo_plan, "search")["SEARCH_EXPECTED_SIZE"] == "1000"
    assert env_of(production_plan, "geometric")["GEOMETRIC_VOTE_MAX_DESCRIPTORS"] == str(vote_budget(4096, 80, 100_000))
    assert env_of(demo_plan, "geometric")["GEOMETRIC_VOTE_MAX_DESCRIPTORS"] == str(vote_budget(1024, 80, 1_000))
