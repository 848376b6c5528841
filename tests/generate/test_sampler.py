"""The generated make_loader shuffles and shards with torch's DistributedSampler, exactly
as Lightning builds it under DDP (use_distributed_sampler, its default): the same seed
(trainer.seed, which Lightning reads from PL_GLOBAL_SEED), the same shards, the same
order each epoch. So both styles see the same batches, one process or several.
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


def _lightning_sampler(dataset, shuffle, replicas, rank, seed, monkeypatch):
    """The sampler Lightning's Trainer puts into a plain DataLoader under DDP."""
    from pytorch_lightning.trainer.connectors.data_connector import _get_distributed_sampler
    from torch.utils.data import DataLoader

    monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))  # set by pl.seed_everything(seed)
    loader = DataLoader(dataset, batch_size=4, shuffle=shuffle)
    return _get_distributed_sampler(
        loader, shuffle, overfit_batches=0, num_replicas=replicas, rank=rank
    )


CASES = list(
    itertools.product(
        [1, 7, 10, 13],  # dataset lengths, including shorter than the replica count
        [1, 2, 3, 8],  # replicas
        [True, False],  # shuffle
    )
)


@pytest.mark.parametrize("length, replicas, shuffle", CASES)
def test_shards_match_lightnings_distributed_sampler(
    data_module, monkeypatch, length, replicas, shuffle
):
    config = data_module.Config()
    dataset = list(range(length))
    for rank in range(replicas):
        ours = data_module.make_loader(
            dataset, config, shuffle=shuffle, pin_memory=False, num_replicas=replicas, rank=rank
        ).sampler
        theirs = _lightning_sampler(
            dataset, shuffle, replicas, rank, config.trainer.seed, monkeypatch
        )
        for epoch in (0, 3):
            if hasattr(ours, "set_epoch"):  # one process, no shuffle: sequential
                ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs), (rank, epoch)
            assert len(ours) == len(theirs)


def test_the_order_depends_on_seed_and_epoch_only(data_module):
    import torch

    config = data_module.Config()
    sampler = data_module.make_loader(list(range(50)), config, shuffle=True, pin_memory=False)
    sampler = sampler.sampler
    sampler.set_epoch(2)
    torch.manual_seed(123)  # the global RNG plays no part
    seed = config.trainer.seed + 2
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(seed)).tolist()
    assert list(sampler) == expected == list(sampler)
    sampler.set_epoch(3)
    assert list(sampler) != expected


def test_ranks_together_cover_every_example(data_module):
    config = data_module.Config()
    shards = [
        list(
            data_module.make_loader(
                list(range(10)), config, shuffle=True, pin_memory=False, num_replicas=4, rank=r
            ).sampler
        )
        for r in range(4)
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
