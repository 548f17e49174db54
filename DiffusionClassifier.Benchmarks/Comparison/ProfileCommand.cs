using System.Globalization;
using DiffusionClassifier.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The <c>profile</c> mode: where the forward's time goes, by module type. Hooks before and after every leaf module
/// (convolution, normalisation, activation, pooling, linear) read the process CPU time, so the split stays
/// meaningful on a loaded machine when libtorch runs on one thread; the rest ("outside modules") is the element-wise
/// work in the blocks' forward methods (residual additions, concatenations, embeddings) and the .NET side.
/// <c>dotnet run -c Release --project DiffusionClassifier.Benchmarks -- profile --features 64 --chunk 32 --threads 1 ChannelsLast</c>.
/// </summary>
public static class ProfileCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Runs the profile.</summary>
    /// <param name="args">Arguments after <c>profile</c>.</param>
    /// <param name="output">Where the table goes.</param>
    /// <returns>0, or 2 for bad arguments.</returns>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        if (Parse(args) is not { } p)
            return 2;

        BenchmarkEnvironment.Initialize(p.Threads);
        var config = ConditionalUNetConfig.Mnist(p.Features);
        using var model = BenchmarkEnvironment.CreateModel(config);
        var extra = p.Fold ? ForwardVariants.FoldBatchNorm(model) : [];
        ForwardVariants.Apply(model, p.Variant);
        ForwardVariants.ApplyTo(extra, p.Variant);
        var (x32, labels, t32) = BenchmarkEnvironment.CreateInputs(config, p.Chunk);
        using var x = ForwardVariants.Input(x32, p.Variant);
        using var t = p.Variant.IsBFloat16() ? t32.to(ScalarType.BFloat16) : t32.clone();
        x32.Dispose();
        t32.Dispose();

        var timer = new ModuleTimer();
        timer.Attach(model.modules().Concat(extra));
        void Forward()
        {
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            model.forward(x, labels, t);
            BenchmarkEnvironment.Synchronize();
        }
        double total = CpuSecondsPerForward(Forward, timer, p.Warmup, p.Calls);
        labels.Dispose();

        WriteTable(output, p, timer.Seconds, total);
        return 0;
    }

    /// <summary>The parsed arguments.</summary>
    private sealed record ProfileSettings(int Features, int Chunk, int Threads, int Warmup, int Calls, ForwardVariant Variant, bool Fold);

    /// <summary>Parses the arguments; on an error, prints it and the usage and returns null.</summary>
    private static ProfileSettings? Parse(IReadOnlyList<string> args)
    {
        try
        {
            var parsed = VariantArguments.Parse(args, new Dictionary<string, int>
            {
                ["--features"] = 64, ["--chunk"] = 32, ["--threads"] = 0, ["--warmup"] = 20, ["--calls"] = 10,
            });
            var (features, chunk, threads, warmup, calls) = (parsed["--features"], Math.Max(1, parsed["--chunk"]), parsed["--threads"],
                parsed["--warmup"], Math.Max(1, parsed["--calls"]));
            if (parsed.Specs.Count > 1)
                throw new ArgumentException("profile takes one variant spec.", nameof(args));
            var (variant, fold) = parsed.Specs.Count == 1 ? (parsed.Specs[0].Variant, parsed.Specs[0].Fold) : (ForwardVariant.Float32, false);
            new ConditionalUNetConfig(1, features, 10, 28, 28).Validate();
            return new ProfileSettings(features, chunk, threads, warmup, calls, variant, fold);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("profile: --features 64 --chunk 32 --threads 0 --warmup 20 --calls 10 [variant[:fold]]");
            return null;
        }
    }

    /// <summary>
    /// Runs <paramref name="warmup"/> forwards, then <paramref name="calls"/> with <paramref name="timer"/> recording;
    /// returns the process CPU seconds per recorded forward.
    /// </summary>
    private static double CpuSecondsPerForward(Action forward, ModuleTimer timer, int warmup, int calls)
    {
        for (int i = 0; i < warmup; i++)
            forward();
        timer.Recording = true;
        var start = Environment.CpuUsage.TotalTime;
        for (int i = 0; i < calls; i++)
            forward();
        return (Environment.CpuUsage.TotalTime - start).TotalSeconds / calls;
    }

    /// <summary>Writes the summary line and the table of CPU time per module type, largest first, then the rest.</summary>
    private static void WriteTable(TextWriter output, ProfileSettings p, Dictionary<string, double> seconds, double total)
    {
        output.WriteLine(string.Create(Inv, $"F = {p.Features}, chunk {p.Chunk}, {p.Variant}{(p.Fold ? " with BatchNorm folded" : "")}, {get_num_threads()} threads: {total * 1e3:F1} CPU-ms per forward ({p.Chunk / total:F1} images per CPU-s), mean of {p.Calls} forwards after {p.Warmup}; load average {Timing.LoadAverage()?.ToString("F1", Inv) ?? "-"}."));
        output.WriteLine();
        output.WriteLine("| module type | CPU-ms per forward | share |");
        output.WriteLine("|---|---:|---:|");
        foreach (var (kind, s) in seconds.OrderByDescending(kv => kv.Value))
            output.WriteLine(string.Create(Inv, $"| {kind} | {s / p.Calls * 1e3:F2} | {100 * s / p.Calls / total:F1}% |"));
        double outside = total - seconds.Values.Sum() / p.Calls;
        output.WriteLine(string.Create(Inv, $"| (outside modules{(p.Fold ? "; includes the GELUs of the folded blocks" : "")}) | {outside * 1e3:F2} | {100 * outside / total:F1}% |"));
    }

    /// <summary>Adds up the process CPU time spent inside each leaf module type, between hooks before and after its forward.</summary>
    private sealed class ModuleTimer
    {
        private readonly Dictionary<nn.Module, TimeSpan> started = new();

        /// <summary>CPU seconds per module type name, of the forwards run while <see cref="Recording"/>.</summary>
        public Dictionary<string, double> Seconds { get; } = new();

        /// <summary>Whether forwards count (not during the warm-up).</summary>
        public bool Recording { get; set; }

        /// <summary>Hooks every leaf (a module without children) of <paramref name="modules"/>, each once.</summary>
        public void Attach(IEnumerable<nn.Module> modules)
        {
            foreach (var module in modules.Where(m => !m.children().Any()).OfType<nn.Module<Tensor, Tensor>>().Distinct().ToList())
            {
                string kind = module.GetType().Name;
                module.register_forward_pre_hook((m, input) =>
                {
                    started[m] = Environment.CpuUsage.TotalTime;
                    return input;
                });
                module.register_forward_hook((m, input, result) =>
                {
                    if (Recording)
                        Seconds[kind] = Seconds.GetValueOrDefault(kind) + (Environment.CpuUsage.TotalTime - started[m]).TotalSeconds;
                    return result;
                });
            }
        }
    }
}
