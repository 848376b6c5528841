"""The generated EpochShuffleSampler shards data exactly as torch's DistributedSampler does.

Same seed and epoch -> the same permutation, the same padding (or trimming with
drop_last) and the same rank-strided shard; with one replica, the whole order unchanged.
"""

import itertools

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.spec.schema import Spec

from .helpers import project_module, write_files


@pytest.fixture(scope="module")
def data_module(tmp_path_factory):
    project = write_files(render_project(Spec(), "pytorch"), tmp_path_factory.mktemp("sampler"))
    with project_module(project, "tabular_classifier", "data") as module:
        yield module


CASES = list(
    itertools.product(
        [1, 7, 10, 13],  # dataset lengths, including shorter than the replica count
        [1, 2, 3, 8],  # replicas
        [True, False],  # shuffle
        [False, True],  # drop_last
    )
)


@pytest.mark.parametrize("length, replicas, shuffle, drop_last", CASES)
def test_shards_match_torch_distributed_sampler(data_module, length, replicas, shuffle, drop_last):
    from torch.utils.data import DistributedSampler

    for rank in range(replicas):
        ours = data_module.EpochShuffleSampler(
            length,
            seed=5,
            shuffle=shuffle,
            num_replicas=replicas,
            rank=rank,
            drop_last=drop_last,
        )
        theirs = DistributedSampler(
            range(length),
            num_replicas=replicas,
            rank=rank,
            shuffle=shuffle,
            seed=5,
            drop_last=drop_last,
        )
        for epoch in (0, 3):
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_one_replica_keeps_the_single_process_order(data_module):
    import torch

    sampler = data_module.EpochShuffleSampler(50, seed=9)
    sampler.set_epoch(2)
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(11)).tolist()
    assert list(sampler) == expected


def test_ranks_together_cover_every_example(data_module):
    shards = [
        list(data_module.EpochShuffleSampler(10, 1, num_replicas=4, rank=r)) for r in range(4)
    ]
    assert sorted(set(itertools.chain(*shards))) == list(range(10))
    assert {len(shard) for shard in shards} == {3}  # padded to 12: equal steps on every rank


def test_make_loader_shards_only_when_asked(data_module):
    config = data_module.Config()  # data.py imports the project's Config
    dataset = list(range(20))
    single = data_module.make_loader(dataset, config, shuffle=False, pin_memory=False)
    assert single.sampler.__class__.__name__ == "SequentialSampler"
    shard = data_module.make_loader(
        dataset, config, shuffle=False, pin_memory=False, num_replicas=2, rank=1
    )
    assert list(shard.sampler) == list(range(1, 20, 2))
