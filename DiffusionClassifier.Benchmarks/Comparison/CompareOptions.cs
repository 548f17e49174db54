using System.CommandLine;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>Options of the <c>compare</c> mode (see <see cref="CompareCommand"/>), parsed from the command line.</summary>
public sealed class CompareOptions
{
    /// <summary>Network widths F to measure. Default 32, 64, 128.</summary>
    public int[] Widths { get; set; } = [32, 64, 128];

    /// <summary>Forward chunk sizes. Default 10, 32, 64, 128.</summary>
    public int[] Chunks { get; set; } = [10, 32, 64, 128];

    /// <summary>Widths at which the classifiers are measured; default: <see cref="Widths"/>.</summary>
    public int[]? EstimatorWidths { get; set; }

    /// <summary>Monte Carlo samples N of the classifiers. Default 20.</summary>
    public int N { get; set; } = 20;

    /// <summary>Rows per forward in the reference estimator (both sides); 0 = all N*10 rows. Default 100.</summary>
    public int EstimatorChunk { get; set; } = 100;

    /// <summary>Images per call in the PredictBatch measurement. Default 16.</summary>
    public int PredictBatch { get; set; } = 16;

    /// <summary>Size of the square matmul measuring the ceiling. Default 2048.</summary>
    public int MatmulSize { get; set; } = 2048;

    /// <summary>Untimed runs before timing, at least. Default 2.</summary>
    public int Warmup { get; set; } = 2;

    /// <summary>Warm up for at least this many seconds (both sides). Default 3.</summary>
    public double WarmupSeconds { get; set; } = 3;

    /// <summary>Timed runs; the median is reported. Default 7.</summary>
    public int Repeats { get; set; } = 7;

    /// <summary>
    /// Rounds of the classifier comparison, at least 1. Default 1. With R &gt; 1 the classifiers are measured R times,
    /// PyTorch then ours in turn (the first round also measures the matmul and the forward), and the classifier table
    /// gives the median images/s of the rounds with their min and max, and the median of the per-round ratios: a
    /// single run of either side moves with the load of the machine.
    /// </summary>
    public int Rounds { get; set; } = 1;

    /// <summary>Threads for both libtorch and PyTorch; 0 = all processors. Default 0.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// Formats/layouts of our forward measurement, each measured and listed. Default: Float32 (what the library does),
    /// ChannelsLast, ChannelsLastBFloat16.
    /// </summary>
    public ForwardVariant[] Variants { get; set; } = [ForwardVariant.Float32, ForwardVariant.ChannelsLast, ForwardVariant.ChannelsLastBFloat16];

    /// <summary>The Python interpreter with PyTorch. Default /usr/bin/python3.</summary>
    public string Python { get; set; } = "/usr/bin/python3";

    /// <summary>Path of reference_benchmark.py; default: found under tools/pytorch from the current folder up.</summary>
    public string? Script { get; set; }

    /// <summary>Reuse PyTorch results from this JSON file (written by the script's --json) instead of running it.</summary>
    public string? PyTorchJson { get; set; }

    /// <summary>Parts to skip: any of matmul, forward, estimator, predict, pytorch.</summary>
    public HashSet<string> Skip { get; private set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A copy that measures only the classifiers (a later round of <see cref="Rounds"/>).</summary>
    public CompareOptions ClassifiersOnly()
    {
        var copy = (CompareOptions)MemberwiseClone();
        copy.Skip = new HashSet<string>(Skip, StringComparer.OrdinalIgnoreCase) { "matmul", "forward" };
        return copy;
    }

    /// <summary>
    /// Also measure the built-in MNIST model (<see cref="BuiltInFeatures"/> = 48) as a user gets it: the default options
    /// with the early exit, on the first <see cref="PredictBatch"/> embedded test digits. Its rows pair with PyTorch's
    /// reference estimator at the same width, whose cost does not depend on the weights. Needs that width among the
    /// estimator widths. Default off.
    /// </summary>
    public bool BuiltIn { get; set; }

    /// <summary>The width F of the built-in model, which <see cref="BuiltIn"/> needs among the estimator widths.</summary>
    public const int BuiltInFeatures = 48;

    /// <summary>Also write all raw numbers of both sides as JSON to this path.</summary>
    public string? JsonOutput { get; set; }

    /// <summary>The usage text.</summary>
    public const string Usage = """
        compare: the side-by-side comparison with the PyTorch reference (tools/pytorch/reference_benchmark.py).
          --widths 32,64,128        network widths F
          --chunks 10,32,64,128     forward chunk sizes
          --estimator-widths LIST   widths for the classifiers (default: --widths)
          --n 20                    Monte Carlo samples N of the classifiers
          --estimator-chunk 100     rows per forward in the reference estimator (0 = all N*10)
          --predict-batch 16        images per PredictBatch call
          --matmul-size 2048        size of the float32 matmul ceiling
          --warmup 2 --warmup-seconds 3 --repeats 7
                                    untimed runs (at least that many and that long), then timed runs (median)
          --rounds 1                classifier rounds, PyTorch then ours in turn (median, min and max of the rounds)
          --threads 0               threads on both sides (0 = all processors)
          --variants LIST           our forward variants (default Float32,ChannelsLast,ChannelsLastBFloat16;
                                    also BFloat16)
          --python /usr/bin/python3 --script PATH --pytorch-json PATH (reuse PyTorch results)
          --builtin                 also the built-in model (F = 48) with the default options and the early exit,
                                    on embedded test digits (needs 48 among the estimator widths)
          --skip LIST               any of matmul,forward,estimator,predict,pytorch
          --json PATH               write the raw numbers of both sides
        """;

    /// <summary>Parses the arguments after <c>compare</c> (System.CommandLine).</summary>
    /// <param name="args">Arguments.</param>
    /// <exception cref="ArgumentException">An unknown option or a bad value; the message names it.</exception>
    public static CompareOptions Parse(IReadOnlyList<string> args)
    {
        var d = new CompareOptions();
        var widths = ArgumentParsing.List("--widths", "Network widths F.", ArgumentParsing.IntAtLeast(1), "an integer >= 1", d.Widths);
        var chunks = ArgumentParsing.List("--chunks", "Forward chunk sizes.", ArgumentParsing.IntAtLeast(1), "an integer >= 1", d.Chunks);
        var estimatorWidths = ArgumentParsing.List<int>("--estimator-widths", "Widths for the classifiers (default: --widths).", ArgumentParsing.IntAtLeast(1), "an integer >= 1");
        var n = ArgumentParsing.Int("--n", "Monte Carlo samples N of the classifiers.", d.N, 1);
        var estimatorChunk = ArgumentParsing.Int("--estimator-chunk", "Rows per forward in the reference estimator (0 = all N*10).", d.EstimatorChunk, 0);
        var predictBatch = ArgumentParsing.Int("--predict-batch", "Images per PredictBatch call.", d.PredictBatch, 1);
        var matmulSize = ArgumentParsing.Int("--matmul-size", "Size of the float32 matmul ceiling.", d.MatmulSize, 1);
        var warmup = ArgumentParsing.Int("--warmup", "Untimed runs before timing, at least.", d.Warmup, 0);
        var warmupSeconds = ArgumentParsing.Double("--warmup-seconds", "Warm up for at least this many seconds.", d.WarmupSeconds, 0);
        var repeats = ArgumentParsing.Int("--repeats", "Timed runs (median reported).", d.Repeats, 1);
        var rounds = ArgumentParsing.Int("--rounds", "Classifier rounds, PyTorch then ours in turn (median, min and max of the rounds).", d.Rounds, 1);
        var threads = ArgumentParsing.Int("--threads", "Threads on both sides (0 = all processors).", d.Threads, 0);
        var variants = ArgumentParsing.List("--variants", "Our forward variants.", ArgumentParsing.EnumName<ForwardVariant>,
            "one of " + string.Join(", ", Enum.GetNames<ForwardVariant>()), d.Variants);
        var python = new Option<string>("--python") { Description = "Python with PyTorch.", DefaultValueFactory = _ => d.Python };
        var script = new Option<string?>("--script") { Description = "Path of reference_benchmark.py." };
        var pytorchJson = new Option<string?>("--pytorch-json") { Description = "Reuse PyTorch results from this JSON file." };
        var json = new Option<string?>("--json") { Description = "Write the raw numbers of both sides." };
        var builtIn = new Option<bool>("--builtin") { Description = "Also measure the built-in model with the default options and the early exit." };
        string[] parts = ["matmul", "forward", "estimator", "predict", "pytorch"];
        var skip = ArgumentParsing.List<int>("--skip", "Parts to skip.", p => Array.IndexOf(parts, p.ToLowerInvariant()) is int i and >= 0 ? i : null,
            "a part (matmul, forward, estimator, predict, pytorch)");
        var command = new RootCommand("compare: the side-by-side comparison with the PyTorch reference.")
        {
            widths, chunks, estimatorWidths, n, estimatorChunk, predictBatch, matmulSize, warmup, warmupSeconds, repeats, rounds, threads,
            variants, python, script, pytorchJson, json, skip, builtIn,
        };
        var r = ArgumentParsing.Parse(command, args, Usage);
        var o = new CompareOptions
        {
            Widths = r.GetValue(widths)!,
            Chunks = r.GetValue(chunks)!,
            // Not given means the --widths (an absent array option reads as empty, not null).
            EstimatorWidths = r.GetResult(estimatorWidths) is null ? null : r.GetValue(estimatorWidths),
            N = r.GetValue(n),
            EstimatorChunk = r.GetValue(estimatorChunk),
            PredictBatch = r.GetValue(predictBatch),
            MatmulSize = r.GetValue(matmulSize),
            Warmup = r.GetValue(warmup),
            WarmupSeconds = r.GetValue(warmupSeconds),
            Repeats = r.GetValue(repeats),
            Rounds = r.GetValue(rounds),
            Threads = r.GetValue(threads),
            Variants = r.GetValue(variants)!,
            Python = r.GetValue(python)!,
            Script = r.GetValue(script),
            PyTorchJson = r.GetValue(pytorchJson),
            JsonOutput = r.GetValue(json),
            BuiltIn = r.GetValue(builtIn),
        };
        if (o.BuiltIn && !(o.EstimatorWidths ?? o.Widths).Contains(BuiltInFeatures))
            throw new ArgumentException($"--builtin needs {BuiltInFeatures}, the built-in model's width, among the estimator widths, which are {string.Join(",", o.EstimatorWidths ?? o.Widths)} (e.g. --estimator-widths {BuiltInFeatures}).");
        foreach (int part in r.GetValue(skip) ?? [])
            o.Skip.Add(parts[part]);
        if (o.BuiltIn && o.Skip.Contains("predict"))
            throw new ArgumentException("--builtin measures Predict, which --skip predict leaves out; drop one of the two.");
        return o;
    }
}
