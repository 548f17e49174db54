using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Modules;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The <c>variants</c> mode: an A/B comparison of forward variants (<see cref="ForwardVariant"/>, optionally with
/// BatchNorm folded, see <see cref="ForwardVariants.FoldBatchNorm"/>) in one process. The variants take turns round
/// after round, and each variant's speed is reported relative to the first one as the median of the per-round ratios,
/// which cancels most of the drift of a shared, loaded machine.
/// <c>dotnet run -c Release --project DiffusionClassifier.Benchmarks -- variants --features 64 --chunk 32 Float32 ChannelsLast:fold</c>.
/// </summary>
public static class VariantsCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The usage text.</summary>
    public const string Usage = """
        variants: A/B of forward variants in one process, alternating rounds.
          --features 64 --chunk 32 --threads 0 --rounds 9 --calls 2 --warmup 20
          then variant specs: Float32 | ChannelsLast | BFloat16 | ChannelsLastBFloat16, each optionally ':fold'
          (BatchNorm folded into the convolutions); the first spec is the baseline.
        """;

    /// <summary>Runs the A/B comparison.</summary>
    /// <param name="args">Arguments after <c>variants</c>.</param>
    /// <param name="output">Where the table goes.</param>
    /// <returns>0, or 2 for bad arguments.</returns>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        int features, chunk, threads, rounds, calls, warmup;
        IReadOnlyList<VariantSpec> specs;
        try
        {
            var parsed = VariantArguments.Parse(args, new Dictionary<string, int>
            {
                ["--features"] = 64, ["--chunk"] = 32, ["--threads"] = 0, ["--rounds"] = 9, ["--calls"] = 2, ["--warmup"] = 20,
            });
            (features, chunk, threads, rounds, calls, warmup) = (parsed["--features"], parsed["--chunk"], parsed["--threads"],
                Math.Max(1, parsed["--rounds"]), Math.Max(1, parsed["--calls"]), parsed["--warmup"]);
            specs = parsed.Specs;
            if (specs.Count == 0)
                throw new ArgumentException("Give at least one variant spec.", nameof(args));
            new ConditionalUNetConfig(1, features, 10, 28, 28).Validate();
            ArgumentOutOfRangeException.ThrowIfLessThan(chunk, 1);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        BenchmarkEnvironment.Initialize(threads);
        var config = ConditionalUNetConfig.Mnist(features);
        var (x32, labels, t32) = BenchmarkEnvironment.CreateInputs(config, chunk);
        var models = new List<ConditionalUNet>();
        var runs = new List<Action>();
        foreach (var (_, variant, fold) in specs)
        {
            var model = BenchmarkEnvironment.CreateModel(config);
            models.Add(model);
            var extra = fold ? ForwardVariants.FoldBatchNorm(model) : [];
            ForwardVariants.Apply(model, variant);
            ForwardVariants.ApplyTo(extra, variant);
            var x = ForwardVariants.Input(x32, variant).DetachFromDisposeScope();
            var t = (variant.IsBFloat16() ? t32.to(ScalarType.BFloat16) : t32.clone()).DetachFromDisposeScope();
            runs.Add(() =>
            {
                using var mode = inference_mode();
                using var scope = NewDisposeScope();
                model.forward(x, labels, t);
                BenchmarkEnvironment.Synchronize();
            });
        }
        foreach (var run in runs)
            for (int i = 0; i < warmup; i++)
                run();

        var wall = specs.Select(_ => new double[rounds]).ToArray();
        var cpu = specs.Select(_ => new double[rounds]).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int k = 0; k < runs.Count; k++)
            {
                var cpuStart = Environment.CpuUsage.TotalTime;
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < calls; i++)
                    runs[k]();
                wall[k][r] = (double)calls * chunk / Stopwatch.GetElapsedTime(start).TotalSeconds;
                cpu[k][r] = (double)calls * chunk / (Environment.CpuUsage.TotalTime - cpuStart).TotalSeconds;
            }
        }

        output.WriteLine(string.Create(Inv, $"F = {features}, chunk {chunk}, {get_num_threads()} threads, {rounds} rounds of {calls} forwards per variant after {warmup} warm-up forwards; load average {Timing.LoadAverage()?.ToString("F1", Inv) ?? "-"}."));
        output.WriteLine();
        output.WriteLine("| variant | images/s (wall, median) | images/CPU-s (median) | ÷ first (wall) | ÷ first (CPU) | GFLOP/s (wall) |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        double flops = FlopCounter.Forward(config);
        for (int k = 0; k < runs.Count; k++)
        {
            double wallRatio = Timing.Median(Enumerable.Range(0, rounds).Select(r => wall[k][r] / wall[0][r]).ToArray());
            double cpuRatio = Timing.Median(Enumerable.Range(0, rounds).Select(r => cpu[k][r] / cpu[0][r]).ToArray());
            double rate = Timing.Median(wall[k]);
            output.WriteLine(string.Create(Inv, $"| {specs[k].Name} | {rate:F1} | {Timing.Median(cpu[k]):F1} | {wallRatio:F2} | {cpuRatio:F2} | {rate * flops / 1e9:F1} |"));
        }
        foreach (var m in models)
            m.Dispose();
        return 0;
    }
}
