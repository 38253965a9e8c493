"""Two CPU ranks (gloo) train a tiny Llama under DDP with a SinkTracker; rank 0 measures and saves.

Run by tests/test_integrations.py through torch.distributed.run: OUT (argv[1]) gets rank 0's
sinks.jsonl, the final model and the probe. A rank that hung at a collective would time out the test.
"""
import gc
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForCausalLM, LlamaConfig

import sinklab


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = DistributedDataParallel(AutoModelForCausalLM.from_config(cfg))
    probe = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(1))
    tracker = sinklab.SinkTracker(model, probe=probe, every=5, out=out if rank == 0 else None, eps=0.13)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = torch.Generator().manual_seed(2 + rank)
    for step in range(1, 11):
        x = torch.randint(0, 128, (4, 16), generator=data)
        model(input_ids=x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()
        row = tracker.step(step)
        assert (row is not None) == (rank == 0 and step % 5 == 0), (rank, step, row)
    dist.barrier()
    if rank == 0:
        model.module.save_pretrained(out / "final")
        torch.save(probe, out / "probe.pt")
    dist.barrier()  # as sinklab's trainer leaves: together, with DDP's hold on the group dropped first
    del model, tracker, opt
    gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
