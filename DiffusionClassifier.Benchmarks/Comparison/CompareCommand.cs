using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Benchmarks.Comparison;

/// <summary>
/// The <c>compare</c> mode: runs tools/pytorch/reference_benchmark.py (PyTorch), then the same measurements on this
/// library with the same timing method (<see cref="Timing"/>), and prints markdown tables with the ratio ours ÷
/// theirs. <c>dotnet run -c Release --project DiffusionClassifier.Benchmarks -- compare</c>.
/// </summary>
public static class CompareCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // The default options without their early exit: every image then costs the planned work, which the FLOP rate
    // needs, and the reference script has no exit to compare with.
    private static readonly BayesClassifierOptions NoExit = BayesClassifierOptions.Default with { EarlyExit = null };

    /// <summary>Our classifier measurements: JSON method name, title, options, and whether a call takes a batch.</summary>
    private static readonly (string Method, string Title, BayesClassifierOptions Options, bool Batched)[] PredictMethods =
    [
        ("predict-reference", "Predict, Reference options", BayesClassifierOptions.Reference, false),
        ("predict-default-f32", "Predict, Default options, Float32", NoExit with { Precision = InferencePrecision.Float32 }, false),
        ("predict-batch-default-f32", "PredictBatch, Default options, Float32", NoExit with { Precision = InferencePrecision.Float32 }, true),
        ("predict-default", "Predict, Default options (precision Auto)", NoExit, false),
        ("predict-batch-default", "PredictBatch, Default options (precision Auto)", NoExit, true),
    ];

    /// <summary>The built-in model's rows (<see cref="CompareOptions.BuiltIn"/>): JSON method name, title, options,
    /// batched. The default options keep their early exit: a trained model on real digits is where it decides.</summary>
    private static readonly (string Method, string Title, BayesClassifierOptions Options, bool Batched)[] BuiltInMethods =
    [
        ("builtin-predict-f32", "built-in model: Predict, Default options with the exit, Float32", BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32 }, false),
        ("builtin-predict-batch-f32", "built-in model: PredictBatch, Default options with the exit, Float32", BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32 }, true),
        ("builtin-predict", "built-in model: Predict, Default options with the exit (precision Auto)", BayesClassifierOptions.Default, false),
    ];

    /// <summary>Runs the comparison and writes the report.</summary>
    /// <param name="args">Arguments after <c>compare</c> (see <see cref="CompareOptions.Usage"/>).</param>
    /// <param name="output">Where the report goes.</param>
    /// <returns>The process exit code: 0, or 2 for bad arguments, 1 when PyTorch failed.</returns>
    public static int Run(IReadOnlyList<string> args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        CompareOptions options;
        try
        {
            options = CompareOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(CompareOptions.Usage);
            return 2;
        }

        BenchmarkEnvironment.Initialize(options.Threads);
        var report = new JsonObject
        {
            ["machine"] = MachineInfo(),
            ["options"] = JsonSerializer.SerializeToNode(new
            {
                options.Widths, options.Chunks, EstimatorWidths = options.EstimatorWidths ?? options.Widths, options.N,
                options.EstimatorChunk, options.PredictBatch, options.MatmulSize, options.Warmup, options.WarmupSeconds,
                options.Repeats, options.Rounds, Threads = get_num_threads(), Variants = options.Variants.Select(v => v.ToString()).ToArray(),
            }),
        };

        JsonNode? theirs = null;
        if (!options.Skip.Contains("pytorch"))
        {
            theirs = options.PyTorchJson is not null ? JsonNode.Parse(File.ReadAllText(options.PyTorchJson)) : RunPyTorch(options);
            if (theirs is null)
                return 1;
        }
        report["pytorch"] = theirs?.DeepClone();
        report["ours"] = MeasureOurs(options);
        if (options.Rounds > 1)
        {
            var rounds = new JsonArray(Round(theirs, report["ours"]!));
            var later = options.ClassifiersOnly();
            for (int round = 2; round <= options.Rounds; round++)
            {
                Console.Error.WriteLine($"Classifier round {round} of {options.Rounds}.");
                JsonNode? theirRound = null;
                if (theirs is not null && options.PyTorchJson is null)
                {
                    theirRound = RunPyTorch(later);
                    if (theirRound is null)
                        return 1;
                }
                rounds.Add(Round(theirRound, MeasureOurs(later)));
            }
            report["rounds"] = rounds;
        }

        WriteTables(output, options, report);
        if (options.JsonOutput is not null)
            File.WriteAllText(options.JsonOutput, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return 0;
    }

    /// <summary>The classifier rows of one round: both sides' "estimator" arrays and load averages.</summary>
    private static JsonObject Round(JsonNode? theirs, JsonNode ours) => new()
    {
        ["pytorch"] = theirs?["estimator"]?.DeepClone(),
        ["ours"] = ours["estimator"]!.DeepClone(),
        ["load_average"] = Timing.LoadAverage(),
    };

    /// <summary>Our side: matmul ceiling, forward throughput, and the classifiers, with the same timing method.</summary>
    /// <param name="options">What to measure.</param>
    public static JsonObject MeasureOurs(CompareOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new JsonObject
        {
            ["implementation"] = "torchsharp",
            ["torchsharp"] = typeof(Tensor).Assembly.GetName().Version?.ToString(),
            ["threads"] = get_num_threads(),
            ["device"] = BenchmarkEnvironment.Device.ToString(),
            ["load_average_start"] = Timing.LoadAverage(),
        };
        // Shared by the matmul operands and the classifier inputs: the order of the draws decides their values.
        using var gen = new Generator(2);
        if (!options.Skip.Contains("matmul"))
            MeasureMatmul(options, gen, result);
        result["forward"] = options.Skip.Contains("forward") ? new JsonArray() : MeasureForward(options);
        result["estimator"] = MeasureEstimators(options, gen);
        result["load_average_end"] = Timing.LoadAverage();
        return result;
    }

    /// <summary>Times <paramref name="run"/>, waiting for the device after each call, with the options' repeats and warm-up time.</summary>
    private static Measurement Time(CompareOptions options, Action run, int warmup) => Timing.Measure(() =>
    {
        run();
        BenchmarkEnvironment.Synchronize();
    }, warmup, options.Repeats, options.WarmupSeconds);

    /// <summary>Adds the matmul ceiling to <paramref name="result"/>: float32, and bfloat16 when a variant uses it.</summary>
    private static void MeasureMatmul(CompareOptions options, Generator gen, JsonObject result)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        long n = options.MatmulSize;
        var a = randn(new[] { n, n }, generator: gen).to(BenchmarkEnvironment.Device);
        var b = randn(new[] { n, n }, generator: gen).to(BenchmarkEnvironment.Device);
        result["matmul"] = MatmulJson(options, a, b);
        if (options.Variants.Any(v => v.IsBFloat16()))
        {
            // The ceiling of the bfloat16 variants (AMX / AVX512-BF16 where the CPU has them).
            result["matmul_bf16"] = MatmulJson(options, a.to(ScalarType.BFloat16), b.to(ScalarType.BFloat16));
        }
    }

    /// <summary>The measurement of the square product <paramref name="a"/> × <paramref name="b"/>.</summary>
    private static JsonObject MatmulJson(CompareOptions options, Tensor a, Tensor b)
    {
        long n = options.MatmulSize;
        var matmul = MeasurementJson(Time(options, () => a.mm(b).Dispose(), options.Warmup), 0, FlopCounter.Matmul(n));
        matmul["size"] = n;
        return matmul;
    }

    /// <summary>Forward throughput of every variant, width and chunk.</summary>
    private static JsonArray MeasureForward(CompareOptions options)
    {
        var forward = new JsonArray();
        foreach (var variant in options.Variants)
        {
            foreach (int f in options.Widths)
            {
                var config = ConditionalUNetConfig.Mnist(f);
                using var model = BenchmarkEnvironment.CreateModel(config);
                ForwardVariants.Apply(model, variant);
                foreach (int chunk in options.Chunks)
                    forward.Add(MeasureForwardChunk(options, model, config, variant, chunk));
            }
        }
        return forward;
    }

    /// <summary>Forward throughput of <paramref name="model"/> (already converted to <paramref name="variant"/>) on <paramref name="chunk"/> images.</summary>
    private static JsonObject MeasureForwardChunk(CompareOptions options, ConditionalUNet model, ConditionalUNetConfig config, ForwardVariant variant, int chunk)
    {
        using var scope = NewDisposeScope();
        var (x32, labels, t) = BenchmarkEnvironment.CreateInputs(config, chunk);
        x32.MoveToOuterDisposeScope(); labels.MoveToOuterDisposeScope(); t.MoveToOuterDisposeScope();
        var x = ForwardVariants.Input(x32, variant);
        if (variant.IsBFloat16())
            t = t.to(ScalarType.BFloat16);
        var m = Time(options, () =>
        {
            using var mode = inference_mode();
            using var inner = NewDisposeScope();
            model.forward(x, labels, t);
        }, options.Warmup);
        var row = MeasurementJson(m, chunk, chunk * FlopCounter.Forward(config));
        row["variant"] = variant.ToString();
        row["features"] = config.Features;
        row["chunk"] = chunk;
        return row;
    }

    /// <summary>The classifiers at every estimator width.</summary>
    private static JsonArray MeasureEstimators(CompareOptions options, Generator gen)
    {
        var estimators = new JsonArray();
        var scheduler = new DdpmScheduler();
        foreach (int f in options.EstimatorWidths ?? options.Widths)
            MeasureEstimatorsAt(options, gen, scheduler, f, estimators);
        return estimators;
    }

    /// <summary>
    /// Adds the classifiers at width <paramref name="f"/> to <paramref name="estimators"/>: the reference estimator, then
    /// each of <see cref="PredictMethods"/>.
    /// </summary>
    private static void MeasureEstimatorsAt(CompareOptions options, Generator gen, DdpmScheduler scheduler, int f, JsonArray estimators)
    {
        var config = ConditionalUNetConfig.Mnist(f);
        using var model = BenchmarkEnvironment.CreateModel(config);
        using var batch = rand(new long[] { options.PredictBatch, 1, 28, 28 }, generator: gen).to(BenchmarkEnvironment.Device);
        using var image = batch.narrow(0, 0, 1);
        if (!options.Skip.Contains("estimator"))
        {
            var m = Time(options, () => ReferenceEstimator.Classify(model, scheduler, image, options.N, options.EstimatorChunk, gen), EstimatorWarmup(options));
            estimators.Add(EstimatorJson("reference", f, options.N, m, options.N * config.Classes,
                options.N * config.Classes * FlopCounter.Forward(config), 1));
        }
        if (!options.Skip.Contains("predict"))
        {
            foreach (var (method, _, classifierOptions, batched) in PredictMethods)
            {
                using var classifier = new BayesClassifier(model, scheduler, classifierOptions);
                var m = Time(options, () =>
                {
                    if (batched)
                        classifier.PredictBatch(batch, options.N);
                    else
                        classifier.Predict(image, options.N);
                }, EstimatorWarmup(options));
                int images = batched ? options.PredictBatch : 1;
                var (evaluations, _) = FlopCounter.PredictEvaluations(config.Classes, options.N, classifierOptions);
                estimators.Add(EstimatorJson(method, f, options.N, m, evaluations, images * FlopCounter.Predict(config, options.N, classifierOptions), images));
            }
            if (options.BuiltIn && f == CompareOptions.BuiltInFeatures)
                MeasureBuiltIn(options, estimators);
        }
    }

    /// <summary>
    /// The built-in model on the first <see cref="CompareOptions.PredictBatch"/> embedded test digits: one timed run
    /// classifies them all, one call each or one batch. The work per image is what the predictions report (the exit
    /// makes it depend on the digit); the noise is seeded, so every run repeats it.
    /// </summary>
    private static void MeasureBuiltIn(CompareOptions options, JsonArray estimators)
    {
        using var digits = Pretrained.PretrainedModels.LoadMnistTestDigits();
        int count = Math.Min(options.PredictBatch, (int)digits.Images.shape[0]);
        using var head = digits.Images.narrow(0, 0, count);
        using var images = head.to(BenchmarkEnvironment.Device);
        foreach (var (method, _, classifierOptions, batched) in BuiltInMethods)
        {
            using var classifier = Pretrained.PretrainedModels.CreateMnistClassifier(classifierOptions with { Device = BenchmarkEnvironment.Device.ToString() });
            var config = classifier.ModelConfig;
            IReadOnlyList<ClassPrediction> Run()
            {
                if (batched)
                    return classifier.PredictBatch(images, options.N);
                var results = new List<ClassPrediction>(count);
                for (int i = 0; i < count; i++)
                {
                    using var image = images.narrow(0, i, 1);
                    results.Add(classifier.Predict(image, options.N));
                }
                return results;
            }
            var predictions = Run();
            var m = Time(options, () => Run(), EstimatorWarmup(options));
            double evaluations = predictions.Average(p => (double)p.NetworkEvaluations);
            double flops = predictions.Sum(p => p.EquivalentFullEvaluations) * FlopCounter.Forward(config);
            estimators.Add(EstimatorJson(method, config.Features, options.N, m, evaluations, flops, count));
        }
    }

    /// <summary>Warm-up runs of the estimators (each run is a whole image): half the forward warm-up, at least 1.</summary>
    /// <param name="options">The options.</param>
    public static int EstimatorWarmup(CompareOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Math.Max(1, options.Warmup / 2);
    }

    private static JsonObject EstimatorJson(string method, int features, int n, Measurement m, double evaluations, double flops, int images)
    {
        var row = MeasurementJson(m, images, flops);
        row["method"] = method;
        row["features"] = features;
        row["n"] = n;
        row["images"] = images;
        row["evaluations_per_image"] = evaluations;
        return row;
    }

    private static JsonArray ToJson(double[] values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    /// <summary>The JSON of one measurement with the same field names as the Python script.</summary>
    private static JsonObject MeasurementJson(Measurement m, double images, double flops)
    {
        var row = new JsonObject
        {
            ["median_s"] = m.Median, ["samples_s"] = ToJson(m.Samples),
            ["cpu_median_s"] = m.CpuMedian, ["cpu_samples_s"] = ToJson(m.CpuSamples),
            ["gflops"] = flops / m.Median / 1e9, ["gflops_per_cpu_s"] = flops / m.CpuMedian / 1e9,
        };
        if (images > 0)
        {
            row["images_per_s"] = images / m.Median;
            row["images_per_cpu_s"] = images / m.CpuMedian;
        }
        return row;
    }

    /// <summary>Runs the PyTorch script with the same configuration and returns its JSON, or null on failure.</summary>
    private static JsonNode? RunPyTorch(CompareOptions options)
    {
        string script = options.Script ?? FindScript()
            ?? throw new FileNotFoundException("tools/pytorch/reference_benchmark.py not found above the current folder; pass --script.");
        var psi = new ProcessStartInfo(options.Python)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        foreach (var (name, value) in new (string, string)[]
                 {
                     ("--widths", string.Join(',', options.Widths)), ("--chunks", string.Join(',', options.Chunks)),
                     ("--estimator-widths", string.Join(',', options.EstimatorWidths ?? options.Widths)),
                     ("--n", options.N.ToString(Inv)), ("--estimator-chunk", options.EstimatorChunk.ToString(Inv)),
                     ("--matmul-size", options.MatmulSize.ToString(Inv)), ("--warmup", options.Warmup.ToString(Inv)),
                     ("--warmup-seconds", options.WarmupSeconds.ToString(Inv)),
                     ("--repeats", options.Repeats.ToString(Inv)), ("--threads", get_num_threads().ToString(Inv)),
                     ("--json", "-"),
                 })
        {
            psi.ArgumentList.Add(name);
            psi.ArgumentList.Add(value);
        }
        var skip = options.Skip.Where(s => s is "matmul" or "forward" or "estimator").ToArray();
        if (skip.Length > 0)
        {
            psi.ArgumentList.Add("--skip");
            psi.ArgumentList.Add(string.Join(',', skip));
        }
        // Debian's OpenBLAS misdetects these CPUs and runs its slowest kernels unless told the core type.
        if (Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") is null)
            psi.Environment["OPENBLAS_CORETYPE"] = "SkylakeX";
        Console.Error.WriteLine($"Running PyTorch: {options.Python} {string.Join(' ', psi.ArgumentList)}");
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start '{options.Python}'.");
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.Error.WriteLine($"PyTorch script failed with exit code {process.ExitCode}.");
            return null;
        }
        return JsonNode.Parse(stdout);
    }

    private static string? FindScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tools", "pytorch", "reference_benchmark.py");
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }

    private static JsonObject MachineInfo()
    {
        string cpu = "unknown";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException) { }
        return new JsonObject
        {
            ["cpu"] = cpu,
            ["logical_processors"] = Environment.ProcessorCount,
            ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
            ["dotnet"] = Environment.Version.ToString(),
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Inv),
        };
    }

    /// <summary>Writes the markdown tables of a report (the JSON written by --json has the same shape).</summary>
    /// <param name="output">Destination.</param>
    /// <param name="options">The options the report was made with.</param>
    /// <param name="report">The report.</param>
    public static void WriteTables(TextWriter output, CompareOptions options, JsonObject report)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(report);
        var theirs = report["pytorch"];
        var ours = report["ours"]!;
        var machine = report["machine"]!;
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"Machine: {machine["cpu"]}, {machine["logical_processors"]} logical processors, {machine["os"]}, .NET {machine["dotnet"]}, {machine["date_utc"]} UTC.");
        sb.AppendLine(Inv, $"Threads: {ours["threads"]} (ours), {theirs?["threads"]?.ToString() ?? "-"} (PyTorch). Timing: median of {options.Repeats} timed runs after at least {options.Warmup} warm-up runs and {options.WarmupSeconds.ToString(Inv)} s of warm-up (classifiers: {EstimatorWarmup(options)} run).");
        sb.AppendLine(Inv, $"Load average (1 min): PyTorch run {F(Get(theirs, "load_average_start"))} -> {F(Get(theirs, "load_average_end"))}; our run {F(Get(ours, "load_average_start"))} -> {F(Get(ours, "load_average_end"))}.");
        sb.AppendLine(Inv, $"PyTorch {theirs?["torch"]?.ToString() ?? "-"} (mkldnn {theirs?["mkldnn"]?.ToString() ?? "-"}, OPENBLAS_CORETYPE={theirs?["openblas_coretype"]?.ToString() ?? "-"}), float32, NCHW; TorchSharp {ours["torchsharp"]} on {ours["device"]}.");
        sb.AppendLine("Wall = per second of wall-clock time (the real speed on a quiet machine); CPU = per CPU-second of the process (all threads), closer to the work done when other processes compete for the cores.");

        var ourMatmul = ours["matmul"];
        var theirMatmul = theirs?["matmul"];
        double? ceiling = Max(Get(ourMatmul, "gflops"), Get(theirMatmul, "gflops"));
        double? cpuCeiling = Max(Get(ourMatmul, "gflops_per_cpu_s"), Get(theirMatmul, "gflops_per_cpu_s"));
        var ourMatmul16 = ours["matmul_bf16"];
        double? ceiling16 = Get(ourMatmul16, "gflops"), cpuCeiling16 = Get(ourMatmul16, "gflops_per_cpu_s");
        if (ourMatmul is not null || theirMatmul is not null)
        {
            sb.AppendLine();
            sb.AppendLine(Inv, $"Matmul ceiling, float32 {options.MatmulSize}x{options.MatmulSize}: PyTorch {F(Get(theirMatmul, "gflops"))} GFLOP/s ({F(Get(theirMatmul, "gflops_per_cpu_s"))} per CPU-s), TorchSharp {F(Get(ourMatmul, "gflops"))} GFLOP/s ({F(Get(ourMatmul, "gflops_per_cpu_s"))} per CPU-s); % ceiling of the float32 variants is against the larger of the two.");
            if (ourMatmul16 is not null)
                sb.AppendLine(Inv, $"Matmul ceiling, bfloat16 {options.MatmulSize}x{options.MatmulSize}, TorchSharp: {F(ceiling16)} GFLOP/s ({F(cpuCeiling16)} per CPU-s); % ceiling of the bfloat16 variants is against this one.");
        }

        var ourForward = ours["forward"]!.AsArray();
        if (ourForward.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Network forward (images/s; ours: variant = number format and memory layout; GFLOP/s and % of the matmul ceiling of the variant's number format):");
            sb.AppendLine();
            sb.AppendLine("| F | chunk | ours | PyTorch wall | ours wall | ours ÷ PyTorch | ours GFLOP/s | % ceiling | PyTorch CPU | ours CPU | ours ÷ PyTorch (CPU) | % ceiling (CPU) |");
            sb.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var row in ourForward.OrderBy(r => r!["features"]!.GetValue<int>()).ThenBy(r => r!["chunk"]!.GetValue<int>()))
            {
                int f = row!["features"]!.GetValue<int>(), chunk = row["chunk"]!.GetValue<int>();
                var their = theirs?["forward"]?.AsArray()
                    .FirstOrDefault(r => r!["features"]!.GetValue<int>() == f && r["chunk"]!.GetValue<int>() == chunk);
                double? ourRate = Get(row, "images_per_s"), theirRate = Get(their, "images_per_s");
                double? ourCpu = Get(row, "images_per_cpu_s"), theirCpu = Get(their, "images_per_cpu_s");
                bool bf16 = Enum.TryParse<ForwardVariant>(row["variant"]?.GetValue<string>(), out var variant) && variant.IsBFloat16();
                double? wallCeiling = bf16 ? ceiling16 : ceiling, cpuRowCeiling = bf16 ? cpuCeiling16 : cpuCeiling;
                sb.AppendLine(Inv, $"| {f} | {chunk} | {row["variant"]} | {F(theirRate)} | {F(ourRate)} | {Ratio(ourRate, theirRate)} | {F(Get(row, "gflops"))} | {Percent(Get(row, "gflops"), wallCeiling)} | {F(theirCpu)} | {F(ourCpu)} | {Ratio(ourCpu, theirCpu)} | {Percent(Get(row, "gflops_per_cpu_s"), cpuRowCeiling)} |");
            }
        }

        var ourEstimators = ours["estimator"]!.AsArray();
        if (ourEstimators.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine(Inv, $"Classification at N = {options.N} (images/s; against the PyTorch reference estimator, which runs its N*10 rows {(options.EstimatorChunk > 0 ? $"{options.EstimatorChunk} per forward" : "in one forward")}; PredictBatch calls take {options.PredictBatch} images):");
            sb.AppendLine();
            if (report["rounds"] is JsonArray rounds && rounds.Count > 1)
                WriteRounds(sb, ourEstimators, rounds);
            else
                WriteSingleRound(sb, theirs, ourEstimators);
        }
        output.Write(sb.ToString());
    }

    private static void WriteSingleRound(StringBuilder sb, JsonNode? theirs, JsonArray ourEstimators)
    {
        sb.AppendLine("| F | ours | evaluations/image | PyTorch wall | ours wall | ours ÷ PyTorch | PyTorch CPU | ours CPU | ours ÷ PyTorch (CPU) |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in ourEstimators)
        {
            int f = row!["features"]!.GetValue<int>();
            var their = TheirRow(theirs?["estimator"], f);
            double? ourRate = Get(row, "images_per_s"), theirRate = Get(their, "images_per_s");
            double? ourCpu = Get(row, "images_per_cpu_s"), theirCpu = Get(their, "images_per_cpu_s");
            sb.AppendLine(Inv, $"| {f} | {MethodTitle(row["method"]!.GetValue<string>())} | {F(Get(row, "evaluations_per_image"), 0)} | {F(theirRate, 3)} | {F(ourRate, 3)} | {Ratio(ourRate, theirRate)} | {F(theirCpu, 3)} | {F(ourCpu, 3)} | {Ratio(ourCpu, theirCpu)} |");
        }
    }

    /// <summary>The classifier table over rounds: per side the median images/s of the rounds [min–max], and the median
    /// [min–max] of the per-round ratios (each round pairs one PyTorch run with the next run of ours).</summary>
    private static void WriteRounds(StringBuilder sb, JsonArray ourEstimators, JsonArray rounds)
    {
        sb.AppendLine(Inv, $"Median of {rounds.Count} rounds [min–max]; each round runs PyTorch, then ours.");
        sb.AppendLine();
        sb.AppendLine("| F | ours | evaluations/image | PyTorch wall | ours wall | ours ÷ PyTorch | PyTorch CPU | ours CPU | ours ÷ PyTorch (CPU) |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in ourEstimators)
        {
            int f = row!["features"]!.GetValue<int>();
            string method = row["method"]!.GetValue<string>();
            var theirRate = new List<double>(); var ourRate = new List<double>(); var wallRatio = new List<double>();
            var theirCpu = new List<double>(); var ourCpu = new List<double>(); var cpuRatio = new List<double>();
            foreach (var round in rounds)
            {
                var ourRow = round!["ours"]?.AsArray().FirstOrDefault(r => r!["features"]!.GetValue<int>() == f && r["method"]!.GetValue<string>() == method);
                var theirRow = TheirRow(round["pytorch"], f);
                Collect(Get(theirRow, "images_per_s"), Get(ourRow, "images_per_s"), theirRate, ourRate, wallRatio);
                Collect(Get(theirRow, "images_per_cpu_s"), Get(ourRow, "images_per_cpu_s"), theirCpu, ourCpu, cpuRatio);
            }
            sb.AppendLine(Inv, $"| {f} | {MethodTitle(method)} | {F(Get(row, "evaluations_per_image"), 0)} | {Spread(theirRate, 3)} | {Spread(ourRate, 3)} | {Spread(wallRatio, 2, "×")} | {Spread(theirCpu, 3)} | {Spread(ourCpu, 3)} | {Spread(cpuRatio, 2, "×")} |");
        }
    }

    private static void Collect(double? theirs, double? ours, List<double> theirList, List<double> ourList, List<double> ratios)
    {
        if (theirs is double t)
            theirList.Add(t);
        if (ours is double o)
            ourList.Add(o);
        if (theirs is > 0 && ours is double both)
            ratios.Add(both / theirs.Value);
    }

    private static string Spread(List<double> values, int decimals, string unit = "")
    {
        if (values.Count == 0)
            return "-";
        string format = "F" + decimals.ToString(Inv);
        return $"{Timing.Median(values).ToString(format, Inv)}{unit} [{values.Min().ToString(format, Inv)}–{values.Max().ToString(format, Inv)}]";
    }

    private static JsonNode? TheirRow(JsonNode? estimators, int features) =>
        estimators?.AsArray().FirstOrDefault(r => r!["features"]!.GetValue<int>() == features);

    private static string MethodTitle(string method) =>
        method == "reference" ? "reference estimator (same algorithm)" : PredictMethods.Concat(BuiltInMethods).FirstOrDefault(p => p.Method == method).Title ?? method;

    private static double? Get(JsonNode? node, string name) => node?[name]?.GetValue<double>();

    private static double? Max(double? a, double? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    private static string F(double? value, int decimals = 1) =>
        value is null ? "-" : value.Value.ToString("F" + decimals.ToString(Inv), Inv);

    private static string Ratio(double? ours, double? theirs) =>
        ours is null || theirs is null || theirs <= 0 ? "-" : (ours.Value / theirs.Value).ToString("0.00", Inv) + "×";

    private static string Percent(double? value, double? ceiling) =>
        value is null || ceiling is null or <= 0 ? "-" : (100 * value.Value / ceiling.Value).ToString("0", Inv) + "%";
}
