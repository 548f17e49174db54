using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using DiffusionClassifier.Benchmarks;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static DiffusionClassifier.Tests.TestSupport.TinyModels;

namespace DiffusionClassifier.Tests.Benchmarks;

/// <summary>
/// Keeps DiffusionClassifier.Benchmarks from rotting: every benchmark method runs once (GlobalSetup, the method,
/// GlobalCleanup) on tiny models, and every benchmark case reports a sensible workload for the throughput columns.
/// </summary>
public class BenchmarkSmokeTests
{
    private readonly ITestOutputHelper output;

    private static readonly Assembly BenchmarkAssembly = typeof(FlopCounter).Assembly;

    // Keep the test assembly's single libtorch thread (TestAssemblySetup) when a benchmark's setup sets threads.
    public BenchmarkSmokeTests(ITestOutputHelper output)
    {
        this.output = output;
        BenchmarkEnvironment.Threads = 1;
    }

    public static TheoryData<string, string> BenchmarkMethods()
    {
        var data = new TheoryData<string, string>();
        foreach (var type in BenchmarkTypes())
            foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
                data.Add(type.FullName!, method.Name);
        return data;
    }

    private static IEnumerable<Type> BenchmarkTypes() =>
        BenchmarkAssembly.GetTypes()
            .Where(t => t.IsPublic && !t.IsAbstract && t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
            .OrderBy(t => t.FullName, StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(BenchmarkMethods))]
    public void EveryBenchmarkMethodRunsOnceOnTinySizes(string typeName, string methodName)
    {
        var type = BenchmarkAssembly.GetType(typeName)!;
        var method = type.GetMethod(methodName)!;
        BenchmarkEnvironment.Smoke = true;
        BenchmarkEnvironment.ModelFactory = config => TinyModels.Create(config);
        try
        {
            foreach (var assignment in SmallestParameterSets(type))
            {
                var instance = Activator.CreateInstance(type)!;
                foreach (var (name, value) in assignment)
                    ThroughputColumn.SetMember(instance, name, value);
                Invoke<GlobalSetupAttribute>(instance, methodName);
                try
                {
                    Invoke<IterationSetupAttribute>(instance, methodName);
                    method.Invoke(instance, null);
                    Invoke<IterationCleanupAttribute>(instance, methodName);
                }
                finally
                {
                    Invoke<GlobalCleanupAttribute>(instance, methodName);
                }
            }
        }
        finally
        {
            BenchmarkEnvironment.Smoke = false;
            BenchmarkEnvironment.ModelFactory = null;
        }
    }

    [Fact]
    public void BenchmarkDotNetAcceptsEveryClassAndEveryCaseHasAWorkload()
    {
        BenchmarkEnvironment.Smoke = false;
        var types = BenchmarkTypes().ToArray();
        Assert.NotEmpty(types);
        foreach (var type in types)
        {
            var run = BenchmarkConverter.TypeToBenchmarks(type);
            Assert.NotEmpty(run.BenchmarksCases);
            var errors = run.Config.GetValidators()
                .SelectMany(v => v.Validate(new BenchmarkDotNet.Validators.ValidationParameters(run.BenchmarksCases, run.Config)))
                .Where(e => e.IsCritical)
                .ToArray();
            Assert.True(errors.Length == 0, $"{type.Name}: {string.Join("; ", errors.Select(e => e.Message))}");
            Assert.Contains(type.GetCustomAttributes<ConfigAttribute>(), a => a.Config is ThroughputConfig);
            var device = Assert.Single(new ThroughputConfig().GetColumnProviders().SelectMany(p => p.GetColumns(null!)), c => c.ColumnName == ThroughputConfig.DeviceColumnName);
            Assert.StartsWith(cuda.is_available() ? "cuda" : "cpu", device.GetValue(null!, run.BenchmarksCases[0]));
            foreach (var benchmarkCase in run.BenchmarksCases)
            {
                var workload = ThroughputColumn.Describe(benchmarkCase);
                Assert.NotNull(workload);
                Assert.True(workload.Flops > 0 && double.IsFinite(workload.Flops), $"{benchmarkCase.DisplayInfo}: FLOPs {workload.Flops}");
                Assert.True(workload.Images >= 0 && workload.EvaluationsPerImage >= 0, benchmarkCase.DisplayInfo);
            }
        }
    }

    [Fact]
    public void ForwardWorkloadMatchesTheReferenceFlopCounts()
    {
        BenchmarkEnvironment.Smoke = false;
        // docs/algorithm.md §1: 0.172 / 0.687 / 2.746 GFLOP per image at F = 32 / 64 / 128.
        foreach (var (features, gflop) in new[] { (32, 0.172), (64, 0.687), (128, 2.746) })
        {
            var forward = new NetworkForwardBenchmarks { Features = features, Chunk = 32 }.Describe(nameof(NetworkForwardBenchmarks.Forward));
            Assert.Equal(32, forward.Images);
            Assert.Equal(1, forward.EvaluationsPerImage);
            Assert.Equal(32 * gflop, forward.Flops / 1e9, 0.002 * 32 * gflop);

            var trunkHead = new TrunkHeadBenchmarks { Features = features, Images = 10 };
            var full = trunkHead.Describe(nameof(TrunkHeadBenchmarks.FullForward));
            var shared = trunkHead.Describe(nameof(TrunkHeadBenchmarks.TrunkOnceHeadPerLabel));
            Assert.Equal(10, full.EvaluationsPerImage);
            Assert.Equal(100 * gflop, full.Flops / 1e9, 0.002 * 100 * gflop);
            // The trunk is 38.2% of a forward: sharing it over 10 labels saves 90% of that.
            Assert.Equal(1 - 0.9 * 0.382, shared.Flops / full.Flops, 0.002);
        }
    }

    [Theory]
    [InlineData(Estimator.Reference, 20)]
    [InlineData(Estimator.NoExit, 20)]
    [InlineData(Estimator.NoExit, 50)]
    [InlineData(Estimator.NoExit, 100)]
    [InlineData(Estimator.Reference, 7)]
    [InlineData(Estimator.NoExit, 7)]
    public void PredictWorkloadMatchesWhatTheClassifierReports(Estimator estimator, int n)
    {
        var config = new ConditionalUNetConfig(1, 8, 10, 8, 8);
        using var model = TinyModels.Create(config, seed: 3);
        var options = estimator.Options();
        using var classifier = new BayesClassifier(model, new DdpmScheduler(), options);
        using var image = rand(new long[] { 1, 1, 8, 8 }, generator: new Generator(12));
        var prediction = classifier.Predict(image, n);
        var (evaluations, trunks) = FlopCounter.PredictEvaluations(config.Classes, n, options);
        Assert.Equal(prediction.NetworkEvaluations, evaluations);
        Assert.Equal(prediction.TrunkEvaluations, trunks);
        double flops = FlopCounter.Predict(config, n, options);
        Assert.Equal(prediction.EquivalentFullEvaluations * config.ForwardFlops(), flops, 1e-9 * flops);
        if (estimator == Estimator.Reference)
            Assert.Equal(n * 10L, evaluations);
    }

    [Fact]
    public void EarlyExitWorkloadIsWhatTheClassifierSpentOnTheDigits()
    {
        BenchmarkEnvironment.Smoke = true;
        try
        {
            var spent = new Dictionary<Estimator, Workload>();
            foreach (var estimator in new[] { Estimator.NoExit, Estimator.Default })
            {
                var bench = new EarlyExitBenchmarks { N = 20, Estimator = estimator };
                bench.Setup();
                try { bench.PredictBatch(); }
                finally { bench.Cleanup(); }
                // The precision column finds what this case's classifier ran in (Auto is resolved per machine). The
                // smoke test of every method also sets up the N = 20 NoExit case; the Default case is this test's own.
                var benchmarkCase = BenchmarkConverter.TypeToBenchmarks(typeof(EarlyExitBenchmarks)).BenchmarksCases
                    .Single(c => c.Parameters["N"] is 20 && Equals(c.Parameters["Estimator"], estimator));
                Assert.Contains(PrecisionColumn.Find(benchmarkCase), new[] { "float32", "bfloat16" });
                Assert.Equal(PrecisionColumn.Find(benchmarkCase), PrecisionColumn.Instance.GetValue(null!, benchmarkCase));
                var otherCase = BenchmarkConverter.TypeToBenchmarks(typeof(EarlyExitBenchmarks)).BenchmarksCases
                    .Single(c => c.Parameters["N"] is 100 && Equals(c.Parameters["Estimator"], estimator));
                Assert.Null(PrecisionColumn.Find(otherCase));
                spent[estimator] = new EarlyExitBenchmarks { N = 20, Estimator = estimator }.Describe(nameof(EarlyExitBenchmarks.PredictBatch));
            }
            // Smoke: 2 digits at n = 5. Without the exit the work is the planned one; with it, never more.
            using var loaded = DiffusionClassifier.Pretrained.PretrainedModels.LoadMnistDefault();
            var config = loaded.Model.Config;
            var (evaluations, trunks) = FlopCounter.PredictEvaluations(config.Classes, 5, Estimator.NoExit.Options());
            Assert.Equal(2, spent[Estimator.NoExit].Images);
            Assert.Equal(evaluations, spent[Estimator.NoExit].EvaluationsPerImage);
            Assert.Equal(2 * FlopCounter.TrunkAndHeads(config, trunks, evaluations), spent[Estimator.NoExit].Flops, 1e-6);
            Assert.InRange(spent[Estimator.Default].EvaluationsPerImage, 1, evaluations);
        }
        finally
        {
            BenchmarkEnvironment.Smoke = false;
        }
    }

    /// <summary>What BenchmarkDotNet's in-process toolchain runs: a generated subclass of the benchmark class.</summary>
    private sealed class GeneratedRunnable : EarlyExitBenchmarks;

    [Fact]
    public void PrecisionColumnFindsACaseRunThroughAGeneratedSubclass()
    {
        BenchmarkEnvironment.Smoke = true;
        try
        {
            var bench = new GeneratedRunnable { N = 50, Estimator = Estimator.Default };
            bench.Setup();
            bench.Cleanup();
            var benchmarkCase = BenchmarkConverter.TypeToBenchmarks(typeof(EarlyExitBenchmarks)).BenchmarksCases
                .Single(c => c.Parameters["N"] is 50 && Equals(c.Parameters["Estimator"], Estimator.Default));
            Assert.Contains(PrecisionColumn.Find(benchmarkCase), new[] { "float32", "bfloat16" });
        }
        finally
        {
            BenchmarkEnvironment.Smoke = false;
        }
    }

    [Theory]
    [InlineData(8, 8)]
    [InlineData(32, 28)]
    public void FlopFormulaAgreesWithACountFromTheLayerShapes(int features, int side)
    {
        var config = new ConditionalUNetConfig(1, features, 10, side, side);
        using var model = TinyModels.Create(config, seed: 5);
        model.eval();
        var (trunk, head) = FlopCounter.CountFromModules(model, batch: 2);
        Assert.Equal(FlopCounter.Trunk(config), trunk, 1e-9 * trunk);
        Assert.Equal(FlopCounter.Head(config), head, 1e-9 * head);
        Assert.Equal(FlopCounter.Forward(config), trunk + head, 1e-9 * (trunk + head));
    }

    private static ConditionalUNet Louder(ConditionalUNet model)
    {
        Loud(model);
        using var mode = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (name.StartsWith("timeembed", StringComparison.Ordinal) || name.StartsWith("contextembed", StringComparison.Ordinal))
                p.mul_(4);
        return model;
    }

    /// <summary>
    /// A variant computes the same network: its RMS error against plain float32 is within the variant's rounding
    /// (channels-last reorders sums, about 1e-6; bfloat16 rounds to 8 bits: 1.05e-2 measured 2026-12-04 on AMD EPYC
    /// Zen 5 with the convolution guard), and far smaller than what a mistake gives: the same network with other labels,
    /// or at other timesteps. The embeddings are scaled up so that label and time matter as in a trained network.
    /// </summary>
    [Theory]
    [InlineData(ForwardVariant.ChannelsLast, 1e-5)]
    [InlineData(ForwardVariant.BFloat16, 0.03)]
    [InlineData(ForwardVariant.ChannelsLastBFloat16, 0.03)]
    public void ForwardVariantsComputeTheSameNetwork(ForwardVariant variant, double tolerance)
    {
        var config = new ConditionalUNetConfig(1, 16, 10, 8, 8);
        using var plain = Louder(TinyModels.Create(config, seed: 6));
        using var changed = Louder(TinyModels.Create(config, seed: 6));
        plain.eval();
        changed.eval();
        ForwardVariants.Apply(changed, variant);
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var gen = new Generator(9);
        var x = rand(new long[] { 4, 1, 8, 8 }, generator: gen);
        var labels = tensor(new long[] { 0, 3, 7, 9 });
        var t = rand(new long[] { 4 }, generator: gen);
        var expected = plain.forward(x, labels, t);
        var xv = ForwardVariants.Input(x, variant);
        if (variant.IsChannelsLast())
            Assert.True(ForwardVariants.IsChannelsLast(xv));
        var actual = changed.forward(xv, labels, variant.IsBFloat16() ? t.to(ScalarType.BFloat16) : t).to(ScalarType.Float32);
        double Rms(Tensor a) => a.square().mean().sqrt().item<float>();
        double error = Rms(actual - expected) / Rms(expected);
        double otherLabels = Rms(plain.forward(x, tensor(new long[] { 1, 4, 8, 0 }), t) - expected) / Rms(expected);
        double otherTime = Rms(plain.forward(x, labels, t * 0.8f) - expected) / Rms(expected);
        output.WriteLine($"{variant}: relative RMS error {error:E2}; other labels {otherLabels:E2}, other timesteps {otherTime:E2}");
        Assert.True(error <= tolerance, $"{variant}: relative RMS error {error:E3} (allowed {tolerance})");
        Assert.True(error < otherLabels / 3 && error < otherTime / 3,
            $"{variant}: error {error:E2} is not far below a wrong label ({otherLabels:E2}) or timestep ({otherTime:E2})");
        if (variant.IsChannelsLast())
        {
            var weight = changed.parameters().First(p => p.dim() == 4 && p.shape[1] > 1);
            Assert.True(ForwardVariants.IsChannelsLast(weight));
        }
    }

    [Fact]
    public void FoldingBatchNormKeepsTheOutputs()
    {
        var config = new ConditionalUNetConfig(1, 16, 10, 8, 8);
        using var plain = TinyModels.Create(config, seed: 8);
        using var folded = TinyModels.Create(config, seed: 8);
        using (no_grad())
        {
            // Non-trivial running statistics and affine parameters, the same in both models.
            var gen = new Generator(13);
            foreach (var ((name, a), (_, b)) in plain.named_buffers().Zip(folded.named_buffers()))
            {
                if (name.EndsWith("running_mean", StringComparison.Ordinal)) { a.copy_(randn(a.shape, generator: gen) * 0.3); b.copy_(a); }
                if (name.EndsWith("running_var", StringComparison.Ordinal)) { a.copy_(rand(a.shape, generator: gen) + 0.5); b.copy_(a); }
            }
            foreach (var ((name, a), (_, b)) in plain.named_parameters().Zip(folded.named_parameters()))
                if (name.Contains(".1.", StringComparison.Ordinal)) { a.copy_(randn(a.shape, generator: gen)); b.copy_(a); }
        }
        plain.eval();
        folded.eval();
        var convolutions = ForwardVariants.FoldBatchNorm(folded);
        Assert.Equal(2 * 7, convolutions.Count); // init_conv, down1, down2, up1 (2), up2 (2): two convolutions each
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var x = rand(new long[] { 3, 1, 8, 8 }, generator: new Generator(14));
        var labels = tensor(new long[] { 1, 5, 9 });
        var t = rand(new long[] { 3 }, generator: new Generator(15));
        var expected = plain.forward(x, labels, t);
        var actual = folded.forward(x, labels, t);
        double scale = expected.abs().max().item<float>();
        double error = (actual - expected).abs().max().item<float>();
        Assert.True(scale > 0.01, $"scale {scale}");
        Assert.True(error <= 1e-5 * Math.Max(1, scale), $"max error {error}, scale {scale}");
    }

    [Fact]
    public void VariantsCommandPrintsOneRowPerSpecAndRejectsBadSpecs()
    {
        var writer = new StringWriter();
        Assert.Equal(0, DiffusionClassifier.Benchmarks.Comparison.VariantsCommand.Run(
            ["--features", "8", "--chunk", "2", "--rounds", "1", "--calls", "1", "--warmup", "0", "--threads", "1", "Float32", "ChannelsLast:fold"], writer));
        string text = writer.ToString();
        Assert.Contains("| Float32 |", text);
        Assert.Contains("| ChannelsLast:fold |", text);
        Assert.Equal(2, DiffusionClassifier.Benchmarks.Comparison.VariantsCommand.Run(["Float64"], new StringWriter()));
        Assert.Equal(2, DiffusionClassifier.Benchmarks.Comparison.VariantsCommand.Run(["Float32:fast"], new StringWriter()));
        Assert.Equal(2, DiffusionClassifier.Benchmarks.Comparison.VariantsCommand.Run([], new StringWriter()));
    }

    [Fact]
    public void VariantArgumentsTakeKnownIntegerOptionsAndVariantSpecs()
    {
        var defaults = new Dictionary<string, int> { ["--features"] = 64, ["--chunk"] = 32 };
        var parsed = DiffusionClassifier.Benchmarks.Comparison.VariantArguments.Parse(["bfloat16", "--chunk", "10", "ChannelsLast:fold"], defaults);

        Assert.Equal((64, 10), (parsed["--features"], parsed["--chunk"]));
        Assert.Equal([new("bfloat16", ForwardVariant.BFloat16, false), new("ChannelsLast:fold", ForwardVariant.ChannelsLast, true)], parsed.Specs);
        foreach (string[] bad in new string[][] { ["--rounds", "3"], ["--chunk"], ["--chunk", "-1"], ["--chunk", "x"], ["3"], ["Float32:fold:x"] })
            Assert.Throws<ArgumentException>(() => DiffusionClassifier.Benchmarks.Comparison.VariantArguments.Parse(bad, defaults));
        var profile = new StringWriter();
        Assert.Equal(0, DiffusionClassifier.Benchmarks.Comparison.ProfileCommand.Run(
            ["--features", "8", "--chunk", "2", "--warmup", "0", "--calls", "1", "--threads", "1", "ChannelsLast:fold"], profile));
        Assert.Contains("F = 8, chunk 2, ChannelsLast with BatchNorm folded", profile.ToString());
        Assert.Contains("| (outside modules", profile.ToString());
        Assert.Equal(2, DiffusionClassifier.Benchmarks.Comparison.ProfileCommand.Run(["Float32", "BFloat16"], new StringWriter()));
        Assert.Equal(2, DiffusionClassifier.Benchmarks.Comparison.ProfileCommand.Run(["--chunk"], new StringWriter()));
    }

    /// <summary>One assignment per value of each enum/bool parameter; the first listed value of every [Params].</summary>
    private static IEnumerable<List<(string Name, object? Value)>> SmallestParameterSets(Type type)
    {
        var sets = new List<List<(string, object?)>> { new() };
        foreach (var member in type.GetMembers().Where(m => m is PropertyInfo or FieldInfo))
        {
            object?[]? values = null;
            if (member.GetCustomAttribute<ParamsAttribute>() is { } p)
                values = [p.Values[0]];
            else if (member.GetCustomAttribute<ParamsAllValuesAttribute>() is not null)
            {
                var memberType = member is PropertyInfo pi ? pi.PropertyType : ((FieldInfo)member).FieldType;
                values = memberType == typeof(bool) ? [false, true] : Enum.GetValues(memberType).Cast<object?>().ToArray();
            }
            if (values is null)
                continue;
            sets = sets.SelectMany(s => values.Select(v => new List<(string, object?)>(s) { (member.Name, v) })).ToList();
        }
        return sets;
    }

    private static void Invoke<TAttribute>(object instance, string benchmarkMethod) where TAttribute : TargetedAttribute
    {
        foreach (var m in instance.GetType().GetMethods())
        {
            var attribute = m.GetCustomAttribute<TAttribute>();
            if (attribute is not null && (attribute.Targets is null || attribute.Targets.Length == 0 || attribute.Targets.Contains(benchmarkMethod)))
                m.Invoke(instance, null);
        }
    }
}
