"""LIF speed: neuroaikit vs snnTorch ``Leaky``, 3-layer network, forward + backward, CPU.

Both networks get the same weights and the same input spikes; the script checks that they
emit the same spikes in every layer, then times forward + backward (BPTT through all steps).
ours: multi-step layers (one product over all T steps) with event-driven synapses (only the
weights of inputs that spiked are summed) + the fused LIF time loop. snnTorch: the documented
per-step loop with ``nn.Linear`` + ``snn.Leaky`` (subtract reset, atan surrogate).

The spike check uses weights on a 2^-12 grid: every sum is then exact in float32 whatever the
order of the additions, so any difference would be a real one. With unrounded weights the
event-driven sums round differently from the dense ones in the last bit, a few membrane
potentials land on the other side of the threshold, and the flipped spikes propagate; the
script reports those counts too. It also times our network with dense products, and the
dense products alone (snnTorch's time divided by that bounds what faster neurons alone give).

    python benchmarks/lif_speed.py              # T=25, batch 128, 784-512-512-10
    python benchmarks/lif_speed.py --quick      # fewer repeats
    python benchmarks/lif_speed.py --crossover  # one layer, event-driven vs dense, by density and size
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from neuroaikit.cli.options import positive_int
from neuroaikit.spiking import EventLinear, FeedForwardLIF, LIFParameters
from neuroaikit.io import write_text


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


GRID = 2.0 ** -12  # weights of magnitude <= 1 on this grid keep sums of <= 2^11 terms exact in float32


def make_pair(sizes, beta, seed=0, gain=3.0, grid: float | None = GRID):
    """Our network and snnTorch's with the same weights (default init times ``gain``, so that
    every layer spikes), rounded to multiples of ``grid`` unless it is None."""
    torch.manual_seed(seed)
    ours = FeedForwardLIF(sizes, LIFParameters.from_beta(beta))
    theirs = SnnTorchNet(sizes, beta)
    with torch.no_grad():
        for i, fc in enumerate(theirs.fcs):
            mine = getattr(ours, f"fc{i + 1}")
            mine.weight.mul_(gain)
            if grid is not None:
                for p in (mine.weight, mine.bias):
                    p.copy_(torch.round(p / grid) * grid)
            fc.weight.copy_(mine.weight)
            fc.bias.copy_(mine.bias)
    return ours, theirs


def with_dense_products(net: FeedForwardLIF) -> FeedForwardLIF:
    """A copy of our network whose synapses use dense products (``max_density=0``)."""
    dense = copy.deepcopy(net)
    for layer in dense.modules():
        if isinstance(layer, EventLinear):
            layer.max_density = 0.0
    return dense


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


def matrix_products_times(net: FeedForwardLIF, x, repeats) -> tuple[float, float]:
    """Forward + backward of the network's linear layers alone, fed the spikes the network emits:
    (event-driven, dense). snnTorch runs the dense ones, so ``snnTorch time / dense`` bounds
    what any neuron implementation alone could gain."""
    T, B = x.shape[:2]
    with torch.no_grad():
        spikes = layer_spikes_ours(net, x)
    inputs = [x] + [z.clone().requires_grad_() for z in spikes[:-1]]
    fcs = [getattr(net, f"fc{i}") for i in range(1, net.n_layers + 1)]
    event = lambda: sum(fc(z.reshape(T * B, -1)).sum() for fc, z in zip(fcs, inputs))
    dense = lambda: sum(F.linear(z.reshape(T * B, -1), fc.weight, fc.bias).sum() for fc, z in zip(fcs, inputs))
    return tuple(time_fwd_bwd([event, dense], [*net.parameters(), *inputs], repeats))


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


def event_vs_dense_layer(repeats) -> dict:
    """One layer's forward + backward (input gradient included), event-driven vs dense, over input
    densities and product sizes: where the event path pays (``event_linear`` falls back above
    ``default_max_density()`` and below ``min_product_size()``, which are set from this table)."""
    from neuroaikit.spiking import default_max_density, event_linear, min_product_size, native, synapses

    def pair(rows, k, n, density):
        torch.manual_seed(0)
        weight, bias = torch.randn(n, k).mul_(0.05).requires_grad_(), torch.zeros(n, requires_grad=True)
        x, grad = (torch.rand(rows, k) < density).float().requires_grad_(), torch.randn(rows, n)
        run = lambda max_density: event_linear(x, weight, bias, max_density).mul(grad)
        return time_fwd_bwd([lambda: run(1.0), lambda: run(0.0)], [weight, bias, x], repeats)

    kernels = native.event_kernels()
    width = kernels.vector_bytes() if kernels is not None else None
    print(f"{torch.get_num_threads()} threads; kernels' vector width {width} bytes, "
          f"default density limit {default_max_density()}, smallest event-driven product {min_product_size():.1e}")
    print("one layer, forward + backward: rows x inputs x outputs, input density -> event-driven / dense time")
    densities = (0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8)
    cases = [(3200, 784, 512, d) for d in densities] + [(3200, 512, 512, d) for d in densities]
    cases += [(40, 100, 40, 0.2), (320, 100, 40, 0.2), (128, 784, 128, 0.2), (128, 784, 512, 0.2), (1024, 256, 256, 0.2)]
    rows_out = []
    default_size, synapses.MIN_PRODUCT_SIZE = synapses.MIN_PRODUCT_SIZE, 0  # event path at every size
    try:
        for rows, k, n, density in cases:
            event, dense = pair(rows, k, n, density)
            print(f"  {rows} x {k} x {n} ({rows * k * n:.1e} multiply-adds), density {density:.2f}: "
                  f"{event * 1e3:.2f} / {dense * 1e3:.2f} ms, speed-up {dense / event:.2f}x")
            rows_out.append({"rows": rows, "inputs": k, "outputs": n, "multiply_adds": rows * k * n,
                             "density": density, "event_ms": event * 1e3, "dense_ms": dense * 1e3,
                             "speedup": dense / event})
    finally:
        synapses.MIN_PRODUCT_SIZE = default_size
    return {"threads": torch.get_num_threads(), "repeats": repeats, "vector_bytes": width,
            "default_max_density": default_max_density(), "min_product_size": min_product_size(),
            "cases": rows_out}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, default=25)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 512, 10])
    parser.add_argument("--beta", type=float, default=0.9)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice; use 1 on a busy shared machine)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--crossover", action="store_true",
                        help="instead: one layer, event-driven vs dense, over input densities and sizes")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats = 5
    if args.crossover:
        crossover = event_vs_dense_layer(args.repeats)
        if args.json:
            write_text(args.json, json.dumps(crossover, indent=2))
        return 0
    ours, theirs = make_pair(args.sizes, args.beta)
    torch.manual_seed(1)
    x = (torch.rand(args.T, args.batch, args.sizes[0]) < 0.2).float()
    print(f"network {args.sizes}, T={args.T}, batch {args.batch}, beta {args.beta}, {torch.get_num_threads()} threads, "
          f"input spikes {x.mean():.0%}")
    mismatch = compare_spikes(ours, theirs, x)
    rows = x.shape[0] * x.shape[1]
    for i, (bad, total) in enumerate(mismatch, 1):
        print(f"  layer {i}: {total} spikes ({total / (rows * args.sizes[i]):.1%} of neuron-steps), {bad} differ from snnTorch")
    same = all(bad == 0 for bad, _ in mismatch)
    print(f"same spikes as snnTorch (weights on a 2^-12 grid: every sum exact in any order): {same}")
    raw_ours, raw_theirs = make_pair(args.sizes, args.beta, grid=None)
    raw_mismatch = compare_spikes(raw_ours, raw_theirs, x)
    with torch.no_grad():
        current_gap = (raw_ours.fc1(x) - raw_theirs.fcs[0](x)).abs().max().item()
    flips = " / ".join(str(bad) for bad, _ in raw_mismatch)
    print(f"with unrounded float32 weights: {flips} spikes differ per layer; layer-1 currents differ by at most "
          f"{current_gap:.1e} (the order of float additions), and a spike flipped at the threshold changes later inputs")
    ours_dense = with_dense_products(ours)
    t_ours, t_dense, t_theirs = time_fwd_bwd([lambda: ours(x), lambda: ours_dense(x), lambda: theirs(x)[-1]],
                                             [*ours.parameters(), *ours_dense.parameters(), *theirs.parameters()],
                                             args.repeats)
    print(f"forward+backward (median of {args.repeats}): neuroaikit {t_ours * 1e3:.1f} ms, "
          f"snnTorch {t_theirs * 1e3:.1f} ms, ratio {t_theirs / t_ours:.2f}x (goal >= 1.5x)")
    print(f"  neuroaikit with dense products: {t_dense * 1e3:.1f} ms, ratio {t_theirs / t_dense:.2f}x")
    t_event, t_products = matrix_products_times(ours, x, args.repeats)
    print(f"the linear layers alone: event-driven {t_event * 1e3:.1f} ms, dense {t_products * 1e3:.1f} ms "
          f"(snnTorch's products; faster neurons alone could give at most {t_theirs / t_products:.2f}x)")
    n_ours, n_theirs = neuron_only_times(args.T, args.batch, args.sizes[1], args.beta, args.repeats)
    print(f"LIF layer alone ({args.sizes[1]} neurons, no matrix products): neuroaikit {n_ours * 1e3:.1f} ms, "
          f"snnTorch {n_theirs * 1e3:.1f} ms, ratio {n_theirs / n_ours:.2f}x")
    if args.json:
        figures = {"network": args.sizes, "T": args.T, "batch": args.batch, "threads": torch.get_num_threads(),
                   "repeats": args.repeats, "same_spikes_as_snntorch": same,
                   "spikes_per_layer": [total for _, total in mismatch],
                   "forward_backward_ms": {"neuroaikit": t_ours * 1e3, "neuroaikit_dense": t_dense * 1e3,
                                           "snntorch": t_theirs * 1e3},
                   "speedup_vs_snntorch": t_theirs / t_ours, "speedup_goal": 1.5,
                   "linear_layers_ms": {"event_driven": t_event * 1e3, "dense": t_products * 1e3},
                   "lif_layer_alone_ms": {"neuroaikit": n_ours * 1e3, "snntorch": n_theirs * 1e3}}
        write_text(args.json, json.dumps(figures, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
