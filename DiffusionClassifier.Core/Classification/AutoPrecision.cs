using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Classification;

/// <summary>
/// Resolves <see cref="InferencePrecision.Auto"/> by measurement on the running machine: bfloat16 only where a probe
/// shows it both clearly faster than float32 and accurate enough for the class decisions. Decided once per process for
/// each network (architecture, device and weights).
/// </summary>
internal static class AutoPrecision
{
    /// <summary>bfloat16 must run the probe at least this much faster than float32.</summary>
    public const double MinimumSpeedup = 1.3;

    /// <summary>bfloat16 may move the centred class scores by at most this fraction of their spread (see
    /// <see cref="PrecisionDecision.ScoreError"/>): bfloat16's rounding alone stays well below it, a defective bfloat16
    /// convolution does not (docs/torchsharp-defects.md, defect 4).</summary>
    public const double MaximumScoreError = 0.10;

    // Probe images (each scored for every class): enough for stable timings, about a second on 2 cores at F = 32.
    private const int ProbeImages = 8;
    private const int TimedRuns = 3;

    private static readonly ConcurrentDictionary<string, Lazy<PrecisionDecision>> Decisions = new();

    /// <summary>The precision for <paramref name="model"/> on <paramref name="device"/>.</summary>
    public static PrecisionDecision Decide(ConditionalUNet model, DdpmScheduler scheduler, InferencePrecision requested, Device device)
    {
        if (requested != InferencePrecision.Auto)
            return new PrecisionDecision(requested, requested, "as requested");
        if (device.type != DeviceType.CPU)
            return new PrecisionDecision(requested, InferencePrecision.Float32, $"bfloat16 is considered on the CPU only, and the network runs on {device}");
        if (!NativeBFloat16.IsSupportedByCpu)
            return new PrecisionDecision(requested, InferencePrecision.Float32,
                "this CPU has no native bfloat16 arithmetic (avx512_bf16 or amx_bf16), so bfloat16 would be emulated");
        string key = Key(model, scheduler);
        return Decisions.GetOrAdd(key, _ => new Lazy<PrecisionDecision>(() => Probe(model, scheduler))).Value;
    }

    /// <summary>Architecture, schedule, thread count and a fingerprint of the weights.</summary>
    private static string Key(ConditionalUNet model, DdpmScheduler scheduler)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        double fingerprint = 0;
        foreach (var p in model.parameters())
            fingerprint = fingerprint * 31 + p.detach().to(ScalarType.Float64).abs().sum().item<double>();
        return string.Create(CultureInfo.InvariantCulture,
            $"{model.Config}|{scheduler.NumTrainTimesteps}|{get_num_threads()}|{fingerprint:R}");
    }

    /// <summary>Times and compares both precisions on the same probe batch.</summary>
    internal static PrecisionDecision Probe(ConditionalUNet model, DdpmScheduler scheduler)
    {
        var config = model.Config;
        // The throw-away initial weights of the copies come from the global generator: leave its state as it was.
        using var rngState = random.get_rng_state();
        try
        {
            using var scope = NewDisposeScope();
            using var net32 = Copy(model, ScalarType.Float32);
            using var net16 = Copy(model, ScalarType.BFloat16);
            using var mode = inference_mode();

            var g = new Generator(20261204);
            long k = config.Classes;
            var x0 = rand(new long[] { ProbeImages, config.InChannels, config.Height, config.Width }, generator: g);
            var eps = randn(x0.shape, generator: g);
            var t = tensor(scheduler.EvenlySpacedTimesteps(Math.Min(ProbeImages, scheduler.NumTrainTimesteps)).Select(v => (long)v).ToArray());
            if (t.shape[0] < ProbeImages)
                t = t.repeat(ProbeImages / t.shape[0] + 1).narrow(0, 0, ProbeImages);
            var xt = scheduler.AddNoise(x0, eps, t).repeat_interleave(k, 0);
            var labels = arange(k).repeat(ProbeImages);
            var tNorm = scheduler.NormalizeTimesteps(t.repeat_interleave(k, 0));
            var xt16 = xt.to(ScalarType.BFloat16);
            var tNorm16 = tNorm.to(ScalarType.BFloat16);

            Tensor Run32() => net32.forward(xt, labels, tNorm);
            Tensor Run16() => net16.forward(xt16, labels, tNorm16);

            // Warm-up (oneDNN builds its kernels on the first call), then interleaved timed runs.
            var out32 = Run32();
            var out16 = Run16().to(ScalarType.Float32);
            var times32 = new double[TimedRuns];
            var times16 = new double[TimedRuns];
            for (int i = 0; i < TimedRuns; i++)
            {
                times32[i] = Time(Run32);
                times16[i] = Time(Run16);
            }
            double seconds32 = Median(times32), seconds16 = Median(times16);

            var epsRep = eps.repeat_interleave(k, 0).to(ScalarType.Float64);
            var score32 = Centred(epsRep, out32.to(ScalarType.Float64), k);
            var score16 = Centred(epsRep, out16.to(ScalarType.Float64), k);
            double signal = score32.square().mean().sqrt().item<double>();
            double change = score16.add(score32, TorchScalars.MinusOne).square().mean().sqrt().item<double>();
            double scoreError = signal > 0 ? change / signal : double.PositiveInfinity;
            double speedup = seconds16 > 0 ? seconds32 / seconds16 : 0;

            bool fast = speedup >= MinimumSpeedup, accurate = scoreError <= MaximumScoreError;
            var chosen = fast && accurate ? InferencePrecision.BFloat16 : InferencePrecision.Float32;
            string reason = string.Create(CultureInfo.InvariantCulture,
                $"bfloat16 ran the probe {speedup:F2}x as fast as float32 (needs {MinimumSpeedup:F1}x) and moved the class scores by {100 * scoreError:F1}% of their spread (allowed {100 * MaximumScoreError:F0}%)");
            return new PrecisionDecision(InferencePrecision.Auto, chosen, reason, seconds32, seconds16, scoreError);
        }
        finally
        {
            random.set_rng_state(rngState);
        }
    }

    private static ConditionalUNet Copy(ConditionalUNet model, ScalarType type) => ModelCopy.Create(model, CPU, type);

    /// <summary>Per-image, per-class mean squared error minus its mean over the classes: [images, classes].</summary>
    private static Tensor Centred(Tensor eps, Tensor predicted, long classes)
    {
        var error = eps.add(predicted, TorchScalars.MinusOne).square().mean(new long[] { 1, 2, 3 }).view(-1, classes);
        return error.add(error.mean(new long[] { 1 }, keepdim: true), TorchScalars.MinusOne);
    }

    private static double Time(Func<Tensor> run)
    {
        var watch = Stopwatch.StartNew();
        using var result = run();
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}
