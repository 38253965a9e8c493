#!/usr/bin/env bash
# (2x H200): sigmoid seed 1 at the quick-60m preset's 5,000 steps on a 256-window
# probe, and the FSDP SIGKILL/resume check sharing its GPUs. That call ran an earlier copy of
# gpu_sigmoid_seeds_fsdp_sigkill.sh (git history) whose kill used `setsid`: setsid forked, so nothing was killed and the
# FSDP run finished uninterrupted (BENCHMARKS.md §4). This reruns the call with the fixed kill.
SEEDS=1 exec bash "$(dirname "$0")/gpu_sigmoid_seeds_fsdp_sigkill.sh"
