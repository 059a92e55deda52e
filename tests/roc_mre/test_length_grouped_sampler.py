"""--group_by_length's sampler: a permutation per epoch, batches of similar lengths, resumable with Accelerate."""

import random

import pytest
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from roc_mre.training.length_grouped_sampler import LengthGroupedSampler


_RNG = random.Random(0)
LENGTHS = [_RNG.randint(5, 64) for _ in range(1000)]


def _padded_tokens(batches, lengths):
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)


def test_each_epoch_is_a_permutation_with_the_incomplete_batch_last():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=32, seed=3, mega_batch_factor=4)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert [len(b) for b in batches] == [32] * 31 + [8]
    assert list(sampler) == [i for b in batches for i in b]


def test_batches_carry_far_less_padding_than_random_ones():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=32, seed=3)
    order = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(3)).tolist()
    random_batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    real = sum(LENGTHS)
    assert _padded_tokens(sampler.batches(), LENGTHS) / real < 1.05
    assert _padded_tokens(random_batches, LENGTHS) / real > 1.3


def test_the_order_depends_on_seed_and_epoch_only():
    first, again = LengthGroupedSampler(LENGTHS, 32, seed=1), LengthGroupedSampler(LENGTHS, 32, seed=1)
    assert list(first) == list(again)
    again.set_epoch(1)
    assert list(first) != list(again)
    first.set_epoch(1)
    assert list(first) == list(again)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        LengthGroupedSampler(LENGTHS, batch_size=0)


def test_accelerate_passes_the_epoch_on_and_resumes_mid_epoch():
    accelerator = Accelerator(cpu=True)
    sampler = LengthGroupedSampler(LENGTHS, batch_size=16, seed=5)
    loader = accelerator.prepare(DataLoader(list(range(len(LENGTHS))), batch_size=16, sampler=sampler))
    loader.set_epoch(2)
    seen = [batch.tolist() for batch in loader]
    expected = LengthGroupedSampler(LENGTHS, batch_size=16, seed=5)
    expected.set_epoch(2)
    assert seen == expected.batches()
    loader.set_epoch(2)  # as train.py does before skipping the batches a resumed epoch has done
    resumed = [batch.tolist() for batch in accelerator.skip_first_batches(loader, 10)]
    assert resumed == seen[10:]
