"""LIF speed: neuroaikit vs snnTorch ``Leaky``, 3-layer network, forward + backward, CPU.

Both networks get the same weights and the same input spikes; the script checks that they
emit the same spikes in every layer, then times forward + backward (BPTT through all steps).
ours: multi-step layers (one matrix product over all T steps) + the fused LIF time loop.
snnTorch: the documented per-step loop with ``snn.Leaky`` (subtract reset, atan surrogate).
It also times the linear layers alone (the matrix products both implementations share): the
snnTorch time divided by that is the largest speed-up any neuron implementation could reach.

    python benchmarks/lif_speed.py              # T=25, batch 128, 784-512-512-10
    python benchmarks/lif_speed.py --quick      # fewer repeats
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from neuroaikit.spiking import FeedForwardLIF, LIFParameters


class SnnTorchNet(nn.Module):
    def __init__(self, sizes, beta):
        import snntorch as snn

        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lifs = nn.ModuleList(snn.Leaky(beta=beta) for _ in self.fcs)

    def forward(self, x):  # x: (T, B, N)
        mems = [lif.init_leaky() for lif in self.lifs]
        records = [[] for _ in self.lifs]
        for t in range(x.shape[0]):
            z = x[t]
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                z, mems[i] = lif(fc(z), mems[i])
                records[i].append(z)
        return [torch.stack(r) for r in records]


def layer_spikes_ours(net: FeedForwardLIF, x):
    T, B = x.shape[:2]
    out, z = [], x
    for i in range(1, net.n_layers + 1):
        current = getattr(net, f"fc{i}")(z.reshape(T * B, -1)).view(T, B, -1)
        z, _ = getattr(net, f"lif{i}")(current)
        out.append(z)
    return out


def make_pair(sizes, beta, seed=0, gain=3.0):
    """Our network and snnTorch's with the same weights (default init times ``gain``, so that
    every layer spikes)."""
    torch.manual_seed(seed)
    ours = FeedForwardLIF(sizes, LIFParameters.from_beta(beta))
    theirs = SnnTorchNet(sizes, beta)
    with torch.no_grad():
        for i, fc in enumerate(theirs.fcs):
            getattr(ours, f"fc{i + 1}").weight.mul_(gain)
            fc.weight.copy_(getattr(ours, f"fc{i + 1}").weight)
            fc.bias.copy_(getattr(ours, f"fc{i + 1}").bias)
    return ours, theirs


def compare_spikes(ours, theirs, x) -> list[tuple[int, int]]:
    """(mismatching spikes, total spikes of ours) per layer."""
    with torch.no_grad():
        a, b = layer_spikes_ours(ours, x), theirs(x)
    return [(int((za != zb).sum()), int(za.sum())) for za, zb in zip(a, b)]


def time_fwd_bwd(fns, params, repeats) -> list[float]:
    """Median forward + backward time of each of ``fns``, measured in turns (ours, theirs, ours, ...)
    so that a load change on a shared machine affects both alike; the first turn is a warm-up."""
    times = [[] for _ in fns]
    for _ in range(repeats + 1):
        for fn, record in zip(fns, times):
            for p in params:
                p.grad = None
            t0 = time.perf_counter()
            fn().sum().backward()
            record.append(time.perf_counter() - t0)
    return [sorted(t[1:])[len(t[1:]) // 2] for t in times]


def matrix_products_time(net: FeedForwardLIF, x, repeats) -> float:
    """Forward + backward of the network's linear layers alone, fed the spikes the network emits:
    the work both implementations share, so ``snnTorch time / this`` bounds any LIF speed-up."""
    T, B = x.shape[:2]
    with torch.no_grad():
        spikes = layer_spikes_ours(net, x)
    inputs = [x] + [z.clone().requires_grad_() for z in spikes[:-1]]
    fcs = [getattr(net, f"fc{i}") for i in range(1, net.n_layers + 1)]
    fn = lambda: sum(fc(z.reshape(T * B, -1)).sum() for fc, z in zip(fcs, inputs))
    return time_fwd_bwd([fn], [*net.parameters(), *inputs], repeats)[0]


def neuron_only_times(T, batch, width, beta, repeats) -> tuple[float, float]:
    """Forward + backward of one LIF layer alone (no matrix products) on the same input currents."""
    import snntorch as snn

    current = (torch.randn(T, batch, width) * 0.8 + 0.3).requires_grad_()
    params = LIFParameters.from_beta(beta)
    from neuroaikit.spiking import lif_sequence

    leaky = snn.Leaky(beta=beta)

    def theirs():
        mem, out = leaky.init_leaky(), []
        for t in range(T):
            z, mem = leaky(current[t], mem)
            out.append(z)
        return torch.stack(out)

    return tuple(time_fwd_bwd([lambda: lif_sequence(current, None, params)[0], theirs], [current], repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, default=25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 512, 10])
    parser.add_argument("--beta", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; use 1 on a busy shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 5
    ours, theirs = make_pair(args.sizes, args.beta)
    torch.manual_seed(1)
    x = (torch.rand(args.T, args.batch, args.sizes[0]) < 0.2).float()
    mismatch = compare_spikes(ours, theirs, x)
    print(f"network {args.sizes}, T={args.T}, batch {args.batch}, beta {args.beta}, {torch.get_num_threads()} threads")
    for i, (bad, total) in enumerate(mismatch, 1):
        print(f"  layer {i}: {total} spikes, {bad} differ from snnTorch")
    same = all(bad == 0 for bad, _ in mismatch)
    print(f"same spikes as snnTorch: {same}")
    t_ours, t_theirs = time_fwd_bwd([lambda: ours(x), lambda: theirs(x)[-1]],
                                    [*ours.parameters(), *theirs.parameters()], args.repeats)
    print(f"forward+backward (median of {args.repeats}): neuroaikit {t_ours * 1e3:.1f} ms, "
          f"snnTorch {t_theirs * 1e3:.1f} ms, ratio {t_theirs / t_ours:.2f}x (goal >= 1.5x)")
    t_products = matrix_products_time(ours, x, args.repeats)
    print(f"the matrix products alone (shared by both): {t_products * 1e3:.1f} ms, so even free neurons would give "
          f"at most {t_theirs / t_products:.2f}x")
    n_ours, n_theirs = neuron_only_times(args.T, args.batch, args.sizes[1], args.beta, args.repeats)
    print(f"LIF layer alone ({args.sizes[1]} neurons, no matrix products): neuroaikit {n_ours * 1e3:.1f} ms, "
          f"snnTorch {n_theirs * 1e3:.1f} ms, ratio {n_theirs / n_ours:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
