using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Scores chunks of sample requests with the network for one group of images: x_t from the image's own noise stream,
/// the noise predicted for each requested class, and the per-row error (<see cref="ErrorMetrics.PerPixel"/>) summed
/// over the image. The per-row errors stay on the device until <see cref="Flush"/>, which copies all pending chunks to
/// the host at once.
/// </summary>
/// <param name="network">The network, in eval mode, in <paramref name="networkType"/> on the images' device.</param>
/// <param name="scheduler">The noise schedule.</param>
/// <param name="networkType">The network's dtype (x_t and t/T are cast to it).</param>
/// <param name="shareTrunk">Run the trunk once per sample and the head per class, or the full network per row.</param>
/// <param name="metric">The error between the drawn and the predicted noise.</param>
/// <param name="images">The group's images, float32 [B, C, H, W] on the network's device; not owned.</param>
/// <param name="streams">One noise stream per image; not owned.</param>
/// <param name="onHostTransfer">Called once per device-to-host copy (tests count them).</param>
internal sealed class NetworkEvaluator(ConditionalUNet network, DdpmScheduler scheduler, ScalarType networkType, bool shareTrunk,
    ErrorMetric metric, Tensor images, NoiseSampleStream[] streams, Action? onHostTransfer = null) : ISampleErrorEvaluator, IDisposable
{
    private readonly List<(Tensor Rows, double[][] Errors)> pending = new();

    /// <inheritdoc />
    public void Flush()
    {
        if (pending.Count == 0)
            return;
        using var scope = NewDisposeScope();
        var all = cat(pending.Select(p => p.Rows).ToArray()).cpu().data<double>().ToArray();
        onHostTransfer?.Invoke();
        int row = 0;
        foreach (var (rows, errors) in pending)
        {
            foreach (var e in errors)
                for (int k = 0; k < e.Length; k++)
                    e[k] = all[row++];
            rows.Dispose();
        }
        pending.Clear();
    }

    /// <summary>Releases the chunks not yet flushed.</summary>
    public void Dispose()
    {
        foreach (var (rows, _) in pending)
            rows.Dispose();
        pending.Clear();
    }

    /// <inheritdoc />
    public void Evaluate(IReadOnlyList<SampleRequest> requests, double[][] errors)
    {
        using var scope = NewDisposeScope();
        var device = images.device;
        int pairs = requests.Count;
        var timesteps = new long[pairs];
        var imageIndex = new long[pairs];
        var noise = new Tensor[pairs];
        int rows = 0;
        for (int p = 0; p < pairs; p++)
        {
            var r = requests[p];
            noise[p] = streams[r.Image].NextNoise(r.Sample);
            timesteps[p] = streams[r.Image].Timesteps[r.Sample];
            imageIndex[p] = r.Image;
            rows += r.Classes.Length;
        }
        var rowPair = new long[rows];
        var rowLabel = new long[rows];
        for (int p = 0, row = 0; p < pairs; p++)
        {
            foreach (int c in requests[p].Classes)
            {
                rowPair[row] = p;
                rowLabel[row++] = c;
            }
        }

        var eps = stack(noise).to(device);
        var t = tensor(timesteps, device: device);
        var x0 = images.index_select(0, tensor(imageIndex, device: device));
        var xt = scheduler.AddNoiseUnchecked(x0, eps, t).to(networkType); // t in 1..T by construction
        var tNorm = scheduler.NormalizeTimesteps(t, networkType);
        var pairIndex = tensor(rowPair, device: device);
        var labels = tensor(rowLabel, device: device);
        var rowT = tNorm.index_select(0, pairIndex);

        Tensor predicted;
        if (shareTrunk)
        {
            using var trunk = network.Trunk(xt);
            using var rowTrunk = trunk.Select(pairIndex);
            predicted = network.Head(rowTrunk, labels, rowT);
        }
        else
        {
            predicted = network.forward(xt.index_select(0, pairIndex), labels, rowT);
        }

        // Explicit alpha (a - b): see TorchScalars.
        var diff = predicted.to(ScalarType.Float32).add(eps.index_select(0, pairIndex), TorchScalars.MinusOne);
        pending.Add((metric.PerPixel(diff).to(ScalarType.Float64).sum(new long[] { 1, 2, 3 }).DetachFromDisposeScope(), errors));
    }
}
