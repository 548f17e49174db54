using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The reference Monte Carlo classifier (docs/algorithm.md §5) written directly on <see cref="ConditionalUNet"/>,
/// step for step as <c>classify_reference</c> in tools/pytorch/reference_benchmark.py: N pairs (t ~ U{1..T}, eps),
/// the same pair for every class, full forwards in chunks of rows, mean squared error, argmin. It isolates the
/// speed of the network and tensor library from the library's own estimator.
/// </summary>
public static class ReferenceEstimator
{
    /// <summary>Predicts the label of one image.</summary>
    /// <param name="model">The network, in eval mode.</param>
    /// <param name="scheduler">The noise schedule.</param>
    /// <param name="image">One image [1, C, H, W].</param>
    /// <param name="n">Monte Carlo samples N.</param>
    /// <param name="chunk">Rows per forward; 0 runs all N*K rows at once.</param>
    /// <param name="generator">Random source of t and eps.</param>
    /// <returns>The predicted label.</returns>
    public static int Classify(ConditionalUNet model, DdpmScheduler scheduler, Tensor image, int n, int chunk, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(chunk);
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        int k = model.Config.Classes;
        var device = image.device;
        var ts = scheduler.SampleTimesteps(n, generator);
        var shape = new long[] { n, image.shape[1], image.shape[2], image.shape[3] };
        var eps = randn(shape, generator: generator).to(device);
        var xt = scheduler.AddNoise(image.expand(shape), eps, ts.to(device));
        // Rows are sample-major, class-minor: row s*k + c is pair s scored for class c.
        var rows = xt.repeat_interleave(k, 0);
        var targets = eps.repeat_interleave(k, 0);
        var labels = arange(k, ScalarType.Int64, device).repeat(n);
        var tRows = scheduler.NormalizeTimesteps(ts).to(device).repeat_interleave(k, 0);
        long total = (long)n * k, step = chunk > 0 ? chunk : total;
        var errors = new List<Tensor>();
        for (long i = 0; i < total; i += step)
        {
            long len = Math.Min(step, total - i);
            var pred = model.forward(rows.narrow(0, i, len), labels.narrow(0, i, len), tRows.narrow(0, i, len));
            errors.Add((pred - targets.narrow(0, i, len)).square().mean(new long[] { 1, 2, 3 }));
        }
        var score = cat(errors, 0).view(n, k).mean(new long[] { 0 });
        return (int)score.argmin().item<long>();
    }
}
