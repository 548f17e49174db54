using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

public sealed class SamplingPlanTests
{
    [Fact]
    public void OnlyPruningStagesAreBoundariesOfTheDraw()
    {
        var options = BayesClassifierOptions.Default with { EarlyExit = new EarlyExit() };
        var plan = SamplingPlan.Resolve(options, 20);
        Assert.Equal(20, plan.Samples);
        Assert.Equal([new PruningBoundary(4, 3, null), new PruningBoundary(10, 2, null)], plan.Stages);
        Assert.Equal([4, 6, 9, 14], plan.Looks);
        Assert.Equal([4, 10], plan.Boundaries); // the looks do not re-order the draw
        Assert.Equal(SamplingPlan.Resolve(BayesClassifierOptions.Default, 20).Boundaries, plan.Boundaries);

        var none = SamplingPlan.Resolve(BayesClassifierOptions.Reference, 20);
        Assert.Empty(none.Stages);
        Assert.Empty(none.Looks);
        Assert.Empty(none.Boundaries);
    }

    [Fact]
    public void StratumCentresExtendEvenlySpacedTimestepsBeyondT()
    {
        var scheduler = new DdpmScheduler(10);
        Assert.Equal(scheduler.EvenlySpacedTimesteps(4), scheduler.StratumCentres(4));
        // 20 strata of 1..10: each timestep twice.
        Assert.Equal(Enumerable.Range(1, 10).SelectMany(t => new[] { t, t }), scheduler.StratumCentres(20));
    }

    [Theory]
    [InlineData(ErrorMetric.L2)]
    [InlineData(ErrorMetric.L1)]
    [InlineData(ErrorMetric.Huber)]
    public void ErrorMetricsMatchTheirFormulasAndPyTorch(ErrorMetric metric)
    {
        var values = new[] { -2.5f, -1f, -0.5f, 0f, 0.25f, 1f, 3f };
        using var diff = tensor(values);
        using var perPixel = metric.PerPixel(diff);
        var got = perPixel.data<float>().ToArray();
        using var zero = zeros_like(diff);
        using var reference = metric switch
        {
            ErrorMetric.L2 => nn.functional.mse_loss(diff, zero, nn.Reduction.None),
            ErrorMetric.L1 => nn.functional.l1_loss(diff, zero, nn.Reduction.None),
            _ => nn.functional.huber_loss(diff, zero, 1.0, nn.Reduction.None),
        };
        Assert.Equal(reference.data<float>().ToArray(), got);
        for (int i = 0; i < values.Length; i++)
        {
            double d = values[i], a = Math.Abs(d);
            double expected = metric switch { ErrorMetric.L2 => d * d, ErrorMetric.L1 => a, _ => a < 1 ? 0.5 * d * d : a - 0.5 };
            Assert.Equal(expected, got[i], 6);
        }
    }
}
