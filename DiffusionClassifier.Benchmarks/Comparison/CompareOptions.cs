using System.Globalization;

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
    public HashSet<string> Skip { get; } = new(StringComparer.OrdinalIgnoreCase);

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
          --threads 0               threads on both sides (0 = all processors)
          --variants LIST           our forward variants (default Float32,ChannelsLast,ChannelsLastBFloat16;
                                    also BFloat16)
          --python /usr/bin/python3 --script PATH --pytorch-json PATH (reuse PyTorch results)
          --skip LIST               any of matmul,forward,estimator,predict,pytorch
          --json PATH               write the raw numbers of both sides
        """;

    /// <summary>Parses the arguments after <c>compare</c>.</summary>
    /// <param name="args">Arguments.</param>
    /// <exception cref="ArgumentException">An unknown option or a bad value.</exception>
    public static CompareOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var o = new CompareOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value()
            {
                if (i + 1 >= args.Count)
                    throw new ArgumentException($"Option '{name}' needs a value.", nameof(args));
                return args[++i];
            }
            switch (name)
            {
                case "--widths": o.Widths = IntList(name, Value()); break;
                case "--chunks": o.Chunks = IntList(name, Value()); break;
                case "--estimator-widths": o.EstimatorWidths = IntList(name, Value()); break;
                case "--n": o.N = Int(name, Value(), 1); break;
                case "--estimator-chunk": o.EstimatorChunk = Int(name, Value(), 0); break;
                case "--predict-batch": o.PredictBatch = Int(name, Value(), 1); break;
                case "--matmul-size": o.MatmulSize = Int(name, Value(), 1); break;
                case "--warmup": o.Warmup = Int(name, Value(), 0); break;
                case "--repeats": o.Repeats = Int(name, Value(), 1); break;
                case "--threads": o.Threads = Int(name, Value(), 0); break;
                case "--variants":
                    o.Variants = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(v => Enum.TryParse<ForwardVariant>(v, ignoreCase: true, out var variant) && Enum.IsDefined(variant) && !int.TryParse(v, out _)
                            ? variant
                            : throw new ArgumentException($"Option --variants: '{v}' is not one of {string.Join(", ", Enum.GetNames<ForwardVariant>())}.", nameof(args)))
                        .Distinct().ToArray();
                    if (o.Variants.Length == 0)
                        throw new ArgumentException("Option --variants: empty list.", nameof(args));
                    break;
                case "--warmup-seconds":
                {
                    string v = Value();
                    o.WarmupSeconds = double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 0 && double.IsFinite(seconds)
                        ? seconds
                        : throw new ArgumentException($"Option --warmup-seconds: '{v}' is not a number >= 0.", nameof(args));
                    break;
                }
                case "--python": o.Python = Value(); break;
                case "--script": o.Script = Value(); break;
                case "--pytorch-json": o.PyTorchJson = Value(); break;
                case "--json": o.JsonOutput = Value(); break;
                case "--skip":
                    foreach (var part in Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        if (part is not ("matmul" or "forward" or "estimator" or "predict" or "pytorch"))
                            throw new ArgumentException($"Option --skip: unknown part '{part}' (matmul, forward, estimator, predict, pytorch).", nameof(args));
                        o.Skip.Add(part);
                    }
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{name}'.\n{Usage}", nameof(args));
            }
        }
        return o;
    }

    private static int Int(string name, string text, int min)
    {
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
            throw new ArgumentException($"Option {name}: '{text}' is not an integer >= {min}.", nameof(text));
        return v;
    }

    private static int[] IntList(string name, string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
            throw new ArgumentException($"Option {name}: empty list.", nameof(text));
        return parts.Select(p => Int(name, p, 1)).ToArray();
    }
}
