"""tsslbp._malloc: glibc keeps freed blocks (checked in fresh processes: the setting is process-wide)."""

import os
import subprocess
import sys

import pytest

CHECK = "from tsslbp._malloc import retain_freed_memory as r; print(r(), r())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_applied_once_per_process_and_can_be_turned_off():
    on = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert on.stdout.split() == ["True", "True"], on.stdout
    env = {**os.environ, "TSSLBP_MALLOPT": "0"}
    off = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, env=env
    )
    assert off.stdout.split() == ["False", "False"], off.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page-fault counts from getrusage")
def test_tsslbp_steps_stop_faulting_in_fresh_pages():
    """A LIF forward + TSSL-BP backward on the Fashion-MNIST CNN's first layer, repeated: page faults."""
    code = (
        "import resource, sys, torch\n"
        "from tsslbp._malloc import retain_freed_memory\n"
        "from tsslbp.train.functional import LIFParameters, lif_forward, psp, tsslbp_backward\n"
        "sys.argv[1] == 'on' and retain_freed_memory()\n"
        "p = LIFParameters(5.0, 3.0, 1.0)\n"
        "cur = (torch.randn(5, 64, 32, 24, 24) * 0.8 + 0.5).movedim(0, -1)  # the Fashion-MNIST CNN's first layer\n"
        "def step(): tr = lif_forward(cur, p); tsslbp_backward(psp(tr.spikes, 3.0), tr, p)\n"
        "def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(3): step()\n"
        "before = faults()\n"
        "for _ in range(5): step()\n"
        "print(faults() - before)\n"
    )
    env = {**os.environ, "TSSLBP_MALLOPT": "0"}

    def faults(mode: str, **kwargs) -> int:
        run = subprocess.run(
            [sys.executable, "-c", code, mode], capture_output=True, text=True, **kwargs
        )
        run.check_returncode()
        return int(run.stdout)

    # At this size (24 MB per tensor, as on the CNN's first layer) measured: 0-5,761 faults with the
    # setting vs 152,837-240,896 without. Smaller tensors show much less difference: glibc's own
    # dynamic threshold then already keeps some of them. That dynamic threshold also makes the
    # default's count vary between processes: one CI run saw 19,840 without the setting (the heap
    # happened to be reused), so a pair that misses is measured again, up to three pairs in all;
    # without the setting's effect every pair misses.
    pairs = []
    for _ in range(3):
        pairs.append((faults("on"), faults("off", env=env)))
        on, off = pairs[-1]
        if on < off / 5:
            break
    assert on < off / 5, f"expected far fewer page faults with freed memory kept: (on, off) {pairs}"
