using System.Text.Json.Nodes;
using DiffusionClassifier.Benchmarks;
using DiffusionClassifier.Benchmarks.Comparison;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Benchmarks;

public class ComparisonTests
{
    [Fact]
    public void MedianIsPythonsStatisticsMedian()
    {
        Assert.Equal(2.0, Timing.Median([3.0, 1.0, 2.0]));
        Assert.Equal(2.5, Timing.Median([4.0, 1.0, 2.0, 3.0]));
        Assert.Equal(7.0, Timing.Median([7.0]));
        Assert.Throws<ArgumentException>(() => Timing.Median([]));
    }

    [Fact]
    public void MeasureRunsWarmupThenRepeatsAndTimesOnlyTheRepeats()
    {
        int calls = 0;
        var m = Timing.Measure(() =>
        {
            calls++;
            if (calls > 2)
            {
                Thread.Sleep(20); // wall time without CPU time
                var until = DateTime.UtcNow.AddMilliseconds(30);
                while (DateTime.UtcNow < until) { } // wall and CPU time
            }
        }, warmup: 2, repeats: 3);
        Assert.Equal(5, calls);
        Assert.Equal(3, m.Samples.Length);
        Assert.Equal(3, m.CpuSamples.Length);
        Assert.InRange(m.Median, 0.045, 5);
        // Process CPU time counts every thread (JIT, GC, other work in the test process), so it may exceed the run's
        // wall time, but never all cores for all of it: this still catches cumulative or wrongly scaled CPU times.
        Assert.InRange(m.CpuMedian, 0.0, Environment.ProcessorCount * m.Median + 0.05);
        Assert.Throws<ArgumentOutOfRangeException>(() => Timing.Measure(() => { }, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Timing.Measure(() => { }, -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Timing.Measure(() => { }, 0, 1, -1));
    }

    [Fact]
    public void WarmupLastsAtLeastTheGivenTime()
    {
        int calls = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Timing.Measure(() => { calls++; Thread.Sleep(10); }, warmup: 1, repeats: 1, warmupSeconds: 0.2);
        Assert.True(clock.Elapsed.TotalSeconds >= 0.2);
        Assert.True(calls >= 2 + 1, $"{calls} calls");
    }

    [Fact]
    public void OptionsParseAndRejectBadValuesByName()
    {
        var o = CompareOptions.Parse(["--widths", "32,64", "--n", "5", "--variants", "channelslast,BFloat16", "--skip", "pytorch,matmul", "--threads", "1", "--warmup-seconds", "0.5"]);
        Assert.Equal([32, 64], o.Widths);
        Assert.Equal(5, o.N);
        Assert.Equal([ForwardVariant.ChannelsLast, ForwardVariant.BFloat16], o.Variants);
        Assert.Equal(0.5, o.WarmupSeconds);
        Assert.Equal(1, o.Threads);
        Assert.True(o.Skip.SetEquals(["pytorch", "matmul"]));
        Assert.Equal([10, 32, 64, 128], CompareOptions.Parse([]).Chunks);
        Assert.Null(CompareOptions.Parse([]).EstimatorWidths); // falls back to --widths
        Assert.Equal([32], CompareOptions.Parse(["--estimator-widths", "32"]).EstimatorWidths!);
        Assert.Contains("--n", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--n", "0"])).Message);
        Assert.Contains("--widths", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--widths", "32,x"])).Message);
        Assert.Contains("'--bogus'", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--bogus"])).Message);
        Assert.Contains("--repeats", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--repeats"])).Message);
        Assert.Contains("'fp8'", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--variants", "Float32,fp8"])).Message);
        Assert.Contains("'7'", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--variants", "7"])).Message);
        Assert.Contains("--warmup-seconds", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--warmup-seconds", "-1"])).Message);
        Assert.Contains("'gpu'", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--skip", "gpu"])).Message);
    }

    [Fact]
    public void BuiltInRowsMeasureTheEmbeddedModelWithTheExitAndNeedItsWidth()
    {
        Assert.False(CompareOptions.Parse([]).BuiltIn);
        var bad = Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--estimator-widths", "32", "--builtin"]));
        Assert.Contains("--builtin", bad.Message);
        Assert.Contains("32", bad.Message);
        Assert.Contains("--skip predict", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--estimator-widths", "48", "--builtin", "--skip", "predict"])).Message);

        var options = CompareOptions.Parse(["--estimator-widths", "48", "--builtin", "--skip", "pytorch,matmul,forward,estimator", "--n", "4",
            "--repeats", "1", "--warmup", "0", "--warmup-seconds", "0", "--predict-batch", "3"]);
        Assert.True(options.BuiltIn);
        var rows = CompareCommand.MeasureOurs(options)["estimator"]!.AsArray();
        var builtIn = rows.Where(r => r!["method"]!.GetValue<string>().StartsWith("builtin-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["builtin-predict-f32", "builtin-predict-batch-f32", "builtin-predict"], builtIn.Select(r => r!["method"]!.GetValue<string>()));

        // Independently: the same digits through the same classifier, one Predict each and one PredictBatch (which
        // matches Predict only up to rounding, so an exit decision could differ between the two).
        using var digits = DiffusionClassifier.Pretrained.PretrainedModels.LoadMnistTestDigits();
        using var classifier = DiffusionClassifier.Pretrained.PretrainedModels.CreateMnistClassifier(
            DiffusionClassifier.Classification.BayesClassifierOptions.Default with
            {
                Precision = DiffusionClassifier.Classification.InferencePrecision.Float32,
                Device = BenchmarkEnvironment.Device.ToString(),
            });
        using var head = digits.Images.narrow(0, 0, 3);
        using var images = head.to(BenchmarkEnvironment.Device);
        double single = Enumerable.Range(0, 3).Average(i =>
        {
            using var image = images.narrow(0, i, 1);
            return (double)classifier.Predict(image, 4).NetworkEvaluations;
        });
        double batched = classifier.PredictBatch(images, 4).Average(p => (double)p.NetworkEvaluations);
        foreach (var (row, expected) in builtIn.Take(2).Zip([single, batched]))
        {
            Assert.Equal(48, row!["features"]!.GetValue<int>());
            Assert.Equal(3, row["images"]!.GetValue<int>());
            Assert.Equal(expected, row["evaluations_per_image"]!.GetValue<double>(), 9);
            Assert.True(row["images_per_s"]!.GetValue<double>() > 0);
        }
    }

    [Fact]
    public void TablesShowRatiosAndShareOfTheCeiling()
    {
        var options = CompareOptions.Parse(["--widths", "32", "--chunks", "10"]);
        double flops = FlopCounter.Forward(ConditionalUNetConfig.Mnist(32));
        var report = new JsonObject
        {
            ["machine"] = new JsonObject { ["cpu"] = "test cpu", ["logical_processors"] = 2, ["os"] = "os", ["dotnet"] = "10", ["date_utc"] = "now" },
            ["pytorch"] = JsonNode.Parse("""
                {"torch":"1.13","threads":2,"mkldnn":true,"openblas_coretype":"SkylakeX","load_average_start":1.0,"load_average_end":1.5,
                 "matmul":{"gflops":100.0,"gflops_per_cpu_s":60.0},
                 "forward":[{"features":32,"chunk":10,"images_per_s":200.0,"images_per_cpu_s":120.0,"gflops":34.0,"gflops_per_cpu_s":20.0}],
                 "estimator":[{"features":32,"n":20,"images_per_s":0.5,"images_per_cpu_s":0.3,"evaluations_per_image":200}]}
                """),
            ["ours"] = new JsonObject
            {
                ["threads"] = 2, ["torchsharp"] = "0.107", ["device"] = "cpu", ["load_average_start"] = 0.5, ["load_average_end"] = 0.7,
                ["matmul"] = new JsonObject { ["gflops"] = 80.0, ["gflops_per_cpu_s"] = 50.0 },
                ["forward"] = new JsonArray(new JsonObject
                {
                    ["variant"] = "Float32", ["features"] = 32, ["chunk"] = 10, ["images_per_s"] = 300.0, ["gflops"] = 300 * flops / 1e9,
                    ["images_per_cpu_s"] = 180.0, ["gflops_per_cpu_s"] = 180 * flops / 1e9,
                }),
                ["estimator"] = new JsonArray(new JsonObject
                {
                    ["method"] = "reference", ["features"] = 32, ["images_per_s"] = 1.25, ["images_per_cpu_s"] = 0.6, ["evaluations_per_image"] = 200.0,
                }),
            },
        };
        var writer = new StringWriter();
        CompareCommand.WriteTables(writer, options, report);
        string text = writer.ToString();
        double ourGflops = 300 * flops / 1e9, ourCpuGflops = 180 * flops / 1e9;
        // Wall: ratio 300 / 200 and the share of the larger matmul (100 GFLOP/s); CPU: 180 / 120 against 60 GFLOP/CPU-s.
        Assert.Contains($"| 32 | 10 | Float32 | 200.0 | 300.0 | 1.50× | {ourGflops:F1} | {ourGflops:0}% | 120.0 | 180.0 | 1.50× | {100 * ourCpuGflops / 60:0}% |", text);
        Assert.Contains("PyTorch 100.0 GFLOP/s (60.0 per CPU-s), TorchSharp 80.0 GFLOP/s (50.0 per CPU-s)", text);
        Assert.DoesNotContain("NaN", text);
        Assert.Contains("| 32 | reference estimator (same algorithm) | 200 | 0.500 | 1.250 | 2.50× | 0.300 | 0.600 | 2.00× |", text);
        Assert.Contains("PyTorch run 1.0 -> 1.5; our run 0.5 -> 0.7", text);
    }

    [Fact]
    public void RoundsGiveTheMedianAndSpreadOfEachSideAndOfThePairedRatios()
    {
        var options = CompareOptions.Parse(["--widths", "32", "--rounds", "3", "--skip", "forward,matmul"]);
        Assert.Equal(3, options.Rounds);
        Assert.Contains("--rounds", Assert.Throws<ArgumentException>(() => CompareOptions.Parse(["--rounds", "0"])).Message);
        var later = options.ClassifiersOnly();
        Assert.Contains("matmul", later.Skip);
        Assert.Contains("forward", later.Skip);
        Assert.DoesNotContain("predict", options.Skip);

        static JsonNode Theirs(double rate, double cpu) => JsonNode.Parse(
            $$"""[{"features":32,"n":20,"images_per_s":{{rate}},"images_per_cpu_s":{{cpu}},"evaluations_per_image":200}]""")!;
        static JsonNode Ours(double rate, double cpu) => JsonNode.Parse(
            $$"""[{"method":"predict-default-f32","features":32,"images_per_s":{{rate}},"images_per_cpu_s":{{cpu}},"evaluations_per_image":78}]""")!;
        var report = new JsonObject
        {
            ["machine"] = new JsonObject { ["cpu"] = "test cpu", ["logical_processors"] = 2, ["os"] = "os", ["dotnet"] = "10", ["date_utc"] = "now" },
            ["pytorch"] = new JsonObject { ["threads"] = 2, ["estimator"] = Theirs(2, 1) },
            ["ours"] = new JsonObject { ["threads"] = 2, ["forward"] = new JsonArray(), ["estimator"] = Ours(10, 5) },
            // Ratios per round: 10 / 2 = 5, 12 / 4 = 3, 16 / 2 = 8: the median ratio 5 is not the ratio of the medians (12 / 2).
            ["rounds"] = new JsonArray(
                new JsonObject { ["pytorch"] = Theirs(2, 1), ["ours"] = Ours(10, 5) },
                new JsonObject { ["pytorch"] = Theirs(4, 2), ["ours"] = Ours(12, 6) },
                new JsonObject { ["pytorch"] = Theirs(2, 1), ["ours"] = Ours(16, 8) }),
        };
        var writer = new StringWriter();
        CompareCommand.WriteTables(writer, options, report);
        string text = writer.ToString();
        Assert.Contains("Median of 3 rounds [min–max]", text);
        Assert.Contains("| 32 | Predict, Default options, Float32 | 78 | 2.000 [2.000–4.000] | 12.000 [10.000–16.000] | 5.00× [3.00–8.00] | 1.000 [1.000–2.000] | 6.000 [5.000–8.000] | 5.00× [3.00–8.00] |", text);
    }

    [Fact]
    public void FlopsCommandPrintsTheReferenceCountsAndTheEstimatorWork()
    {
        var writer = new StringWriter();
        Assert.Equal(0, FlopsCommand.Run(writer, [32]));
        string text = writer.ToString();
        // docs/algorithm.md §1: F = 32 has 414,529 parameters and 0.172 GFLOP per image, 38.2% of it in the trunk.
        Assert.Contains("| 32 | 414,529 | 0.172 | 0.066 | 0.106 | 38.2% | 0.172 |", text);
        Assert.Contains("| Reference | 20 | 200 | 200 | 200.0 | 1.00× |", text);
        Assert.Contains("| Default | 20 | 78 | 20 |", text);
    }

    [Fact]
    public void ReferenceEstimatorIsTheArgminOfPairedMeanErrorsWhateverTheChunking()
    {
        var config = new ConditionalUNetConfig(1, 8, 10, 8, 8);
        // An untrained network scores the classes within rounding of each other (1e-5 apart), so the argmin would be
        // decided by each chunking's summation order. A loud one with a 10x label embedding spreads them by ~20%.
        using var model = TinyModels.Loud(TinyModels.Create(config, seed: 11));
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.StartsWith("contextembed", StringComparison.Ordinal))
                    p.mul_(10);
        model.eval();
        var scheduler = new DdpmScheduler(50);
        using var image = rand(new long[] { 1, 1, 8, 8 }, generator: new Generator(4));
        const int n = 6;
        var scores = new double[10];
        {
            // Independent arrangement: one batch per class holding all n pairs, drawn in the same order from the
            // same seed (timesteps first, then the noise).
            using var scope = NewDisposeScope();
            using var mode = inference_mode();
            var gen = new Generator(21);
            var ts = scheduler.SampleTimesteps(n, gen);
            var eps = randn(new long[] { n, 1, 8, 8 }, generator: gen);
            var xt = scheduler.AddNoise(image.expand(n, 1, 8, 8), eps, ts);
            var tt = scheduler.NormalizeTimesteps(ts);
            for (int c = 0; c < 10; c++)
            {
                var pred = model.forward(xt, full(new long[] { n }, c, ScalarType.Int64), tt);
                scores[c] = (pred - eps).square().mean(new long[] { 1, 2, 3 }).mean().item<float>();
            }
        }
        double best = scores.Min();
        Assert.True(scores.Max() - best > 0.01 * best, $"the classes are not separated: {string.Join(", ", scores)}");
        // Chunkings change only float32 rounding (about 1e-6 relative): the label must be the argmin, or a class
        // within rounding of it.
        foreach (int chunk in new[] { 0, 1, 7, 10, 60 })
        {
            int label = ReferenceEstimator.Classify(model, scheduler, image, n, chunk, new Generator(21));
            Assert.True(scores[label] - best <= 1e-5 * best,
                $"chunk {chunk}: label {label} scores {scores[label]:R}, but class {Array.IndexOf(scores, best)} scores {best:R}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => ReferenceEstimator.Classify(model, scheduler, image, 0, 1, new Generator(1)));
    }
}
