using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

/// <summary>
/// <see cref="InferencePrecision.Auto"/>: the decision follows its stated rule from its own measurements, whatever
/// this CPU is, and the presets use it as documented.
/// </summary>
public class InferencePrecisionTests(ITestOutputHelper output)
{
    [Fact]
    public void PresetsUseAutoForDefaultAndFloat32ForReference()
    {
        Assert.Equal(InferencePrecision.Auto, BayesClassifierOptions.Default.Precision);
        Assert.Equal(InferencePrecision.Float32, BayesClassifierOptions.Reference.Precision);
    }

    [Fact]
    public void ExplicitPrecisionsAreKeptAndOtherDevicesGetFloat32WithoutAProbe()
    {
        using var model = TinyModels.Create(TinyModels.Config(features: 16));
        var scheduler = new DdpmScheduler(50);
        foreach (var device in new[] { CPU, new Device("cuda") })
        {
            foreach (var precision in new[] { InferencePrecision.Float32, InferencePrecision.BFloat16 })
            {
                var d = AutoPrecision.Decide(model, scheduler, precision, device);
                Assert.Equal(precision, d.Chosen);
                Assert.Null(d.Speedup);
            }
        }
        var cuda = AutoPrecision.Decide(model, scheduler, InferencePrecision.Auto, new Device("cuda"));
        Assert.Equal(InferencePrecision.Float32, cuda.Chosen);
        Assert.Null(cuda.ScoreError);
        Assert.Contains("cuda", cuda.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ProbeMeasuresBothPrecisionsAndTheDecisionFollowsTheRule()
    {
        using var model = TinyModels.Create(TinyModels.Config(features: 16));
        var scheduler = new DdpmScheduler(50);
        var d = AutoPrecision.Probe(model, scheduler);
        output.WriteLine(d.ToString());
        Assert.True(d.Float32Seconds > 0 && d.BFloat16Seconds > 0, d.ToString());
        // bfloat16 rounds, so the scores move; on an untrained network their spread is tiny, so the ratio may be large.
        Assert.True(d.ScoreError > 0 && double.IsFinite(d.ScoreError.Value), d.ToString());
        bool rule = d.Speedup >= AutoPrecision.MinimumSpeedup && d.ScoreError <= AutoPrecision.MaximumScoreError;
        Assert.Equal(rule ? InferencePrecision.BFloat16 : InferencePrecision.Float32, d.Chosen);
        Assert.Contains("x as fast", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ProbeLeavesTheGlobalGeneratorAsItWas()
    {
        using var model = TinyModels.Create(TinyModels.Config(features: 8));
        manual_seed(77);
        using var expected = rand(4);
        manual_seed(77);
        AutoPrecision.Probe(model, new DdpmScheduler(50));
        using var actual = rand(4);
        Assert.Equal(expected.data<float>().ToArray(), actual.data<float>().ToArray());
    }

    [Fact]
    public void TheClassifierReportsAndRunsTheDecidedPrecision()
    {
        using var model = TinyModels.Create(TinyModels.Config(features: 16));
        var scheduler = new DdpmScheduler(50);
        using var image = rand(new long[] { 1, 8, 8 }, generator: new Generator(4));
        using var auto = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default);
        Assert.Equal(auto.PrecisionDecision.Chosen, auto.Precision);
        Assert.Equal(InferencePrecision.Auto, auto.PrecisionDecision.Requested);
        // Decided once per process for a network: a second classifier gets the same decision object.
        using var again = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default);
        Assert.Same(auto.PrecisionDecision, again.PrecisionDecision);
        // The public reason names the chosen precision and says it was Auto's choice.
        Assert.StartsWith((auto.Precision == InferencePrecision.BFloat16 ? "bfloat16" : "float32") + " (Auto: ", auto.PrecisionReason);
        var resolved = auto.Precision;
        using var same = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with { Precision = resolved });
        using var other = new BayesClassifier(model, scheduler, BayesClassifierOptions.Default with
        {
            Precision = resolved == InferencePrecision.BFloat16 ? InferencePrecision.Float32 : InferencePrecision.BFloat16,
        });
        // Auto gives bit for bit what the explicit decided precision gives, and the other precision differs in rounding.
        var a = auto.Predict(image, 10, seed: 3);
        Assert.Equal(same.Predict(image, 10, seed: 3).MeanErrors, a.MeanErrors);
        Assert.NotEqual(other.Predict(image, 10, seed: 3).MeanErrors, a.MeanErrors);
        Assert.Equal(ScalarType.Float32, model.parameters().First().dtype);
    }
}
