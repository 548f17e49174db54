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
        int features, chunk, threads, warmup, calls;
        var variant = ForwardVariant.Float32;
        bool fold = false;
        try
        {
            var parsed = VariantArguments.Parse(args, new Dictionary<string, int>
            {
                ["--features"] = 64, ["--chunk"] = 32, ["--threads"] = 0, ["--warmup"] = 20, ["--calls"] = 10,
            });
            (features, chunk, threads, warmup, calls) = (parsed["--features"], Math.Max(1, parsed["--chunk"]), parsed["--threads"],
                parsed["--warmup"], Math.Max(1, parsed["--calls"]));
            if (parsed.Specs.Count > 1)
                throw new ArgumentException("profile takes one variant spec.", nameof(args));
            if (parsed.Specs.Count == 1)
                (variant, fold) = (parsed.Specs[0].Variant, parsed.Specs[0].Fold);
            new ConditionalUNetConfig(1, features, 10, 28, 28).Validate();
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("profile: --features 64 --chunk 32 --threads 0 --warmup 20 --calls 10 [variant[:fold]]");
            return 2;
        }

        BenchmarkEnvironment.Initialize(threads);
        var config = ConditionalUNetConfig.Mnist(features);
        using var model = BenchmarkEnvironment.CreateModel(config);
        var extra = fold ? ForwardVariants.FoldBatchNorm(model) : [];
        ForwardVariants.Apply(model, variant);
        ForwardVariants.ApplyTo(extra, variant);
        var (x32, labels, t32) = BenchmarkEnvironment.CreateInputs(config, chunk);
        using var x = ForwardVariants.Input(x32, variant);
        using var t = variant.IsBFloat16() ? t32.to(ScalarType.BFloat16) : t32.clone();
        x32.Dispose();
        t32.Dispose();

        var seconds = new Dictionary<string, double>();
        var started = new Dictionary<nn.Module, TimeSpan>();
        bool recording = false;
        var modules = model.modules().Concat(extra).Where(m => !m.children().Any()).OfType<nn.Module<Tensor, Tensor>>().Distinct().ToList();
        foreach (var module in modules)
        {
            string kind = module.GetType().Name;
            module.register_forward_pre_hook((m, input) =>
            {
                started[m] = Environment.CpuUsage.TotalTime;
                return input;
            });
            module.register_forward_hook((m, input, result) =>
            {
                if (recording)
                    seconds[kind] = seconds.GetValueOrDefault(kind) + (Environment.CpuUsage.TotalTime - started[m]).TotalSeconds;
                return result;
            });
        }
        void Forward()
        {
            using var mode = inference_mode();
            using var scope = NewDisposeScope();
            model.forward(x, labels, t);
            BenchmarkEnvironment.Synchronize();
        }
        for (int i = 0; i < warmup; i++)
            Forward();
        recording = true;
        var start = Environment.CpuUsage.TotalTime;
        for (int i = 0; i < calls; i++)
            Forward();
        double total = (Environment.CpuUsage.TotalTime - start).TotalSeconds / calls;
        labels.Dispose();

        output.WriteLine(string.Create(Inv, $"F = {features}, chunk {chunk}, {variant}{(fold ? " with BatchNorm folded" : "")}, {get_num_threads()} threads: {total * 1e3:F1} CPU-ms per forward ({chunk / total:F1} images per CPU-s), mean of {calls} forwards after {warmup}; load average {Timing.LoadAverage()?.ToString("F1", Inv) ?? "-"}."));
        output.WriteLine();
        output.WriteLine("| module type | CPU-ms per forward | share |");
        output.WriteLine("|---|---:|---:|");
        foreach (var (kind, s) in seconds.OrderByDescending(kv => kv.Value))
            output.WriteLine(string.Create(Inv, $"| {kind} | {s / calls * 1e3:F2} | {100 * s / calls / total:F1}% |"));
        double outside = total - seconds.Values.Sum() / calls;
        output.WriteLine(string.Create(Inv, $"| (outside modules{(fold ? "; includes the GELUs of the folded blocks" : "")}) | {outside * 1e3:F2} | {100 * outside / total:F1}% |"));
        return 0;
    }
}
