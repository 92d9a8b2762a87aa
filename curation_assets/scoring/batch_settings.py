"""How an image pass batches and decodes: plain settings, importable without torch (the Dagster
resources read them in every run process, most of which never score an image)."""

from __future__ import annotations

from dataclasses import dataclass

CPU_DECODE_CHOICES = ("auto", "workers", "between")  # BatchSettings.cpu_decode


@dataclass(frozen=True)
class BatchSettings:
    batch_size: int = 64
    num_workers: int = 2
    pin_memory: bool = False
    # Where the image pass decodes: "auto" (on the GPU when CUDA is present and every due model can
    # take tensors there, else in CPU workers), "cpu", or "device" (tensor path on the models' device).
    decode: str = "auto"
    # Decode at least this large (shorter side, px) even when every due model needs less. A table's
    # values depend (slightly) on the scale its images were decoded at, so a caller that wants a
    # table re-run alone to match the same table computed with the others pins this to the largest
    # input of the models it runs together. None: the largest need of the due models.
    decode_min_side: int | None = None
    # Who decodes on the CPU path: "workers" (num_workers DataLoader processes decoding ahead while
    # the models run: what a GPU wants, its host cores are idle meanwhile), "between" (num_workers
    # threads of this process decoding each batch between the forwards: what models on the CPU want,
    # as they use every core themselves; scoring/decode_between.py), or "auto" (between when every
    # due model runs on the CPU, else workers).
    cpu_decode: str = "auto"
    # How much lower the DataLoader workers' CPU priority is than the model's process (Unix nice;
    # 0: the same). Where cores are short, workers then take the cycles the model's threads leave
    # instead of preempting them mid-forward (a forward split over threads waits for its slowest);
    # with cores to spare, as beside a GPU, nothing changes.
    worker_nice: int = 10

    def loader_kwargs(self) -> dict:
        return {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "worker_nice": self.worker_nice,
        }
