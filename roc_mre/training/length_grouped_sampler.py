"""A shuffling sampler whose consecutive `batch_size` indices have similar lengths, so batches carry little padding.

Random MNRE batches of 32 pad to 1.37x the real token count (most posts are short, a few are long); grouping brings
that to about 1.01x, and on CPU the encoder's time follows the token count. The order stays random: indices are
shuffled with `seed + epoch`, cut into mega-batches of `mega_batch_factor * batch_size`, each sorted by length and cut
into batches, and the batches are shuffled again, the one incomplete batch (if any) last so that the `DataLoader`'s
batching stays aligned with the groups. Deterministic for a given seed and epoch, so a resumed run sees the same order.
"""

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthGroupedSampler(Sampler[int]):
    """Random order with length-homogeneous batches; call `set_epoch` (Accelerate's prepared loaders do) per epoch.

    Args:
        lengths: the token length of every example.
        batch_size: the `DataLoader`'s batch size (per process).
        seed: base seed; the order of epoch `e` is drawn with `seed + e`.
        mega_batch_factor: batches per sorted group; larger means less padding but less randomness between batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, mega_batch_factor: int = 50):
        if batch_size < 1 or mega_batch_factor < 1:
            raise ValueError(f"batch_size ({batch_size}) and mega_batch_factor ({mega_batch_factor}) must be positive")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.mega_batch_factor = mega_batch_factor
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in order."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        group = self.batch_size * self.mega_batch_factor
        full, partial = [], []
        for start in range(0, len(order), group):
            members = sorted(order[start : start + group], key=lambda i: -self.lengths[i])
            for cut in range(0, len(members), self.batch_size):
                batch = members[cut : cut + self.batch_size]
                (full if len(batch) == self.batch_size else partial).append(batch)
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        return shuffled + partial

    def __iter__(self) -> Iterator[int]:
        return iter([index for batch in self.batches() for index in batch])


__all__ = ["LengthGroupedSampler"]
