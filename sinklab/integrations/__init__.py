"""Sink tracking inside other trainers: one framework-free core (`core.SinkTracker`) and thin
callbacks for transformers' `Trainer` (`integrations.transformers`) and Lightning
(`integrations.lightning`). Nothing here imports a trainer until its callback module is imported."""
