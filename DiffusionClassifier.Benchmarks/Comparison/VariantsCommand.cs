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
        if (Parse(args) is not { } s)
            return 2;

        BenchmarkEnvironment.Initialize(s.Threads);
        var config = ConditionalUNetConfig.Mnist(s.Features);
        var (x32, labels, t32) = BenchmarkEnvironment.CreateInputs(config, s.Chunk);
        var models = new List<ConditionalUNet>();
        var runs = new List<Action>();
        foreach (var (_, variant, fold) in s.Specs)
        {
            var model = BenchmarkEnvironment.CreateModel(config);
            models.Add(model);
            runs.Add(PrepareForward(model, variant, fold, x32, labels, t32));
        }
        foreach (var run in runs)
            for (int i = 0; i < s.Warmup; i++)
                run();

        var (wall, cpu) = MeasureRounds(runs, s);
        WriteTable(output, s, config, wall, cpu);
        foreach (var m in models)
            m.Dispose();
        return 0;
    }

    /// <summary>The parsed arguments.</summary>
    private sealed record VariantsSettings(int Features, int Chunk, int Threads, int Rounds, int Calls, int Warmup, IReadOnlyList<VariantSpec> Specs);

    /// <summary>Parses the arguments; on an error, prints it and the usage and returns null.</summary>
    private static VariantsSettings? Parse(IReadOnlyList<string> args)
    {
        try
        {
            var parsed = VariantArguments.Parse(args, new Dictionary<string, int>
            {
                ["--features"] = 64, ["--chunk"] = 32, ["--threads"] = 0, ["--rounds"] = 9, ["--calls"] = 2, ["--warmup"] = 20,
            });
            var settings = new VariantsSettings(parsed["--features"], parsed["--chunk"], parsed["--threads"],
                Math.Max(1, parsed["--rounds"]), Math.Max(1, parsed["--calls"]), parsed["--warmup"], parsed.Specs);
            if (settings.Specs.Count == 0)
                throw new ArgumentException("Give at least one variant spec.", nameof(args));
            new ConditionalUNetConfig(1, settings.Features, 10, 28, 28).Validate();
            ArgumentOutOfRangeException.ThrowIfLessThan(settings.Chunk, 1);
            return settings;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return null;
        }
    }

    /// <summary>Converts <paramref name="model"/> to the variant and returns one timed call: a forward on its own copy of the inputs.</summary>
    private static Action PrepareForward(ConditionalUNet model, ForwardVariant variant, bool fold, Tensor x32, Tensor labels, Tensor t32)
    {
        var extra = fold ? ForwardVariants.FoldBatchNorm(model) : [];
        ForwardVariants.Apply(model, variant);
        ForwardVariants.ApplyTo(extra, variant);
        var x = ForwardVariants.Input(x32, variant).DetachFromDisposeScope();
        var t = (variant.IsBFloat16() ? t32.to(ScalarType.BFloat16) : t32.clone()).DetachFromDisposeScope();
        return () =>
        {
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            model.forward(x, labels, t);
            BenchmarkEnvironment.Synchronize();
        };
    }

    /// <summary>
    /// Runs the variants in turn, <see cref="VariantsSettings.Calls"/> forwards each per round; returns the images per
    /// wall-clock second and per CPU-second of every variant (outer index) in every round (inner index).
    /// </summary>
    private static (double[][] Wall, double[][] Cpu) MeasureRounds(List<Action> runs, VariantsSettings s)
    {
        var wall = runs.Select(_ => new double[s.Rounds]).ToArray();
        var cpu = runs.Select(_ => new double[s.Rounds]).ToArray();
        for (int r = 0; r < s.Rounds; r++)
        {
            for (int k = 0; k < runs.Count; k++)
            {
                var cpuStart = Environment.CpuUsage.TotalTime;
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < s.Calls; i++)
                    runs[k]();
                wall[k][r] = (double)s.Calls * s.Chunk / Stopwatch.GetElapsedTime(start).TotalSeconds;
                cpu[k][r] = (double)s.Calls * s.Chunk / (Environment.CpuUsage.TotalTime - cpuStart).TotalSeconds;
            }
        }
        return (wall, cpu);
    }

    /// <summary>Writes the summary line and one row per variant: medians, and the median per-round ratios to the first variant.</summary>
    private static void WriteTable(TextWriter output, VariantsSettings s, ConditionalUNetConfig config, double[][] wall, double[][] cpu)
    {
        output.WriteLine(string.Create(Inv, $"F = {s.Features}, chunk {s.Chunk}, {get_num_threads()} threads, {s.Rounds} rounds of {s.Calls} forwards per variant after {s.Warmup} warm-up forwards; load average {Timing.LoadAverage()?.ToString("F1", Inv) ?? "-"}."));
        output.WriteLine();
        output.WriteLine("| variant | images/s (wall, median) | images/CPU-s (median) | ÷ first (wall) | ÷ first (CPU) | GFLOP/s (wall) |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        double flops = FlopCounter.Forward(config);
        for (int k = 0; k < wall.Length; k++)
        {
            double wallRatio = Timing.Median(Enumerable.Range(0, s.Rounds).Select(r => wall[k][r] / wall[0][r]).ToArray());
            double cpuRatio = Timing.Median(Enumerable.Range(0, s.Rounds).Select(r => cpu[k][r] / cpu[0][r]).ToArray());
            double rate = Timing.Median(wall[k]);
            output.WriteLine(string.Create(Inv, $"| {s.Specs[k].Name} | {rate:F1} | {Timing.Median(cpu[k]):F1} | {wallRatio:F2} | {cpuRatio:F2} | {rate * flops / 1e9:F1} |"));
        }
    }
}
