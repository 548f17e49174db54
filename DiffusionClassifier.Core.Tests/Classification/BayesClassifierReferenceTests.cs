using DiffusionClassifier.Modules;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Classification;

/// <summary>The library's estimators against a straightforward implementation of docs/algorithm.md §5 written here.</summary>
public class BayesClassifierReferenceTests
{
    private static readonly DdpmScheduler Scheduler = new(50);

    /// <summary>
    /// The reference loop: for every class and every (t, eps), one full forward on x_t = sqrtab x0 + sqrtmab eps
    /// (coefficients in float64), the per-image mean squared error, averaged over samples. Returns the per-pixel
    /// mean error per class.
    /// </summary>
    private static double[] ReferenceScores(ConditionalUNet model, Tensor x0, int[] timesteps, Tensor noise)
    {
        using var scope = NewDisposeScope();
        using var mode = no_grad();
        model.eval();
        int classes = model.Config.Classes;
        var scores = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            double total = 0;
            for (int j = 0; j < timesteps.Length; j++)
            {
                int t = timesteps[j];
                var eps = noise[j].unsqueeze(0);
                var xt = (x0.to(ScalarType.Float64) * Scheduler.SqrtAlphaBars[t] + eps.to(ScalarType.Float64) * Scheduler.SqrtOneMinusAlphaBars[t]).to(ScalarType.Float32);
                var predicted = model.forward(xt, tensor(new long[] { c }), tensor(new float[] { (float)t / Scheduler.NumTrainTimesteps }));
                total += (eps - predicted).square().mean().to(ScalarType.Float64).item<double>();
            }
            scores[c] = total / timesteps.Length;
        }
        return scores;
    }

    /// <summary>
    /// A tiny model whose output layer is scaled up so that eps_hat is as large as eps: with PyTorch's initialisation
    /// the error barely depends on t (and little on the label), and a test would not notice a mistake there.
    /// </summary>
    internal static ConditionalUNet LoudModel() => TinyModels.Loud(TinyModels.Create());

    [Fact]
    public void TheLoudModelsErrorsDependOnLabelAndTimestep()
    {
        using var model = LoudModel();
        using var mode = no_grad();
        using var x = rand(4, 1, 8, 8, generator: new Generator(1));
        using var a = model.forward(x, tensor(new long[] { 0, 0, 0, 0 }), full(4, 0.5f));
        using var b = model.forward(x, tensor(new long[] { 1, 1, 1, 1 }), full(4, 0.5f));
        using var c = model.forward(x, tensor(new long[] { 0, 0, 0, 0 }), full(4, 0.45f));
        Assert.InRange(a.std().item<float>(), 0.3, 3);
        Assert.True((a - b).abs().mean().item<float>() > 1e-2 * a.abs().mean().item<float>());
        Assert.True((a - c).abs().mean().item<float>() > 1e-3 * a.abs().mean().item<float>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReferencePresetReproducesTheReferenceLoop(bool shareTrunk)
    {
        using var model = LoudModel();
        using var classifier = new BayesClassifier(model, Scheduler, BayesClassifierOptions.Reference with { Seed = 11, ShareTrunk = shareTrunk, ChunkSize = 37 });
        using var x0 = rand(new long[] { 1, 1, 8, 8 }, generator: new Generator(5));
        const int n = 7;
        var prediction = classifier.Predict(x0, n);
        var (timesteps, noise) = classifier.DrawNoise(n);
        using (noise)
        {
            Assert.Equal(new long[] { n, 1, 8, 8 }, noise.shape);
            var expected = ReferenceScores(model, x0, timesteps, noise);
            for (int c = 0; c < expected.Length; c++)
                Assert.Equal(expected[c], prediction.MeanErrors[c], 1e-5 * expected[c]);
            Assert.Equal(Array.IndexOf(expected, expected.Min()), prediction.Label);

            // Probabilities: softmax of minus the summed squared error (mean x 64 pixels).
            var logits = expected.Select(e => -e * 64).ToArray();
            double max = logits.Max();
            var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
            for (int c = 0; c < expected.Length; c++)
                Assert.Equal(exp[c] / exp.Sum(), prediction.Probabilities[c], 1e-3 * Math.Max(prediction.Probabilities[c], 1e-3));
        }
        Assert.Equal(n * 10, prediction.NetworkEvaluations);
        Assert.All(prediction.SamplesPerClass, s => Assert.Equal(n, s));
        Assert.Empty(prediction.PrunedClasses);
    }

    [Fact]
    public void ReferenceTimestepsAreUniformOverOneToT()
    {
        using var model = TinyModels.Create();
        using var classifier = new BayesClassifier(model, Scheduler, BayesClassifierOptions.Reference);
        var (timesteps, noise) = classifier.DrawNoise(5000, seed: 3);
        using (noise)
        {
            Assert.Equal(1, timesteps.Min());
            Assert.Equal(50, timesteps.Max());
            Assert.Equal(25.5, timesteps.Average(), 1.0); // sd of the mean is 0.2
            // Unit-variance noise.
            Assert.Equal(0.0, noise.mean().item<float>(), 0.01);
            Assert.Equal(1.0, noise.std().item<float>(), 0.01);
        }
        var (again, noise2) = classifier.DrawNoise(5000, seed: 3);
        noise2.Dispose();
        Assert.Equal(timesteps, again);
    }

    [Fact]
    public void StratifiedTimestepsWithoutPruningAreTheSchedulersEvenlySpacedOnes()
    {
        using var model = TinyModels.Create();
        // Without the early exit, whose looks re-order the samples inside a stage (BayesClassifierTests).
        using var classifier = new BayesClassifier(model, Scheduler, BayesClassifierOptions.Default with { Pruning = null, EarlyExit = null });
        foreach (int n in new[] { 1, 7, 10, 50 })
        {
            var (t, noise) = classifier.DrawNoise(n, seed: 1);
            noise.Dispose();
            Assert.Equal(Scheduler.EvenlySpacedTimesteps(n), t);
        }
        // n > T: the same formula, each timestep repeated.
        var (many, noise3) = classifier.DrawNoise(120, seed: 1);
        noise3.Dispose();
        Assert.Equal(Enumerable.Range(0, 120).Select(i => 1 + (int)Math.Floor((i + 0.5) * 50 / 120)), many);
        Assert.Equal(Enumerable.Range(1, 50), many.Distinct().Order());
    }

    private static int MaxGap(IEnumerable<int> timesteps, int? steps = null)
    {
        var sorted = timesteps.Order().Prepend(0).Append((steps ?? Scheduler.NumTrainTimesteps) + 1).ToArray();
        return sorted.Zip(sorted.Skip(1), (a, b) => b - a).Max();
    }

    [Fact]
    public void LooksInsideAStageSeeAnEvenlySpreadPrefixOfIt()
    {
        // n = 100, pruning after 4 and 10, looks at 4, 6, 9, 14, 21, 32, 48, 72 (the adaptive setting).
        int[] stages = [4, 10], looks = [4, 6, 9, 14, 21, 32, 48, 72];
        var order = NoiseSampleStream.LookOrder(100, stages, looks);
        // A permutation inside each stage: the stage keeps its draws.
        foreach (var (from, to) in new[] { (0, 4), (4, 10), (10, 100) })
            Assert.Equal(Enumerable.Range(from, to - from), order.Skip(from).Take(to - from).Order());
        // The first stage has no look inside it: draw order.
        Assert.Equal([0, 1, 2, 3], order.Take(4));
        // In draw order the last stage's timesteps ascend, so the 22 samples of it that the look at 32 has seen would
        // be its lowest; re-ordered, they cover its whole range with no gap wider than twice the even spacing.
        var reference = new DdpmScheduler(400);
        var t = NoiseSampleStream.StratifiedTimesteps(reference, 100, stages);
        var stage = t.Skip(10).ToArray();
        var seen = order.Skip(10).Take(22).Select(i => t[i]).ToArray();
        Assert.True(seen.Max() > stage.Order().ElementAt(85), $"highest seen {seen.Max()}");
        Assert.True(MaxGap(seen, 400) <= 2 * 400 / 22, $"gap {MaxGap(seen, 400)}");
        Assert.True(stage.Take(22).Max() < stage.Order().ElementAt(22), "draw order ascends");
        // Without looks inside a stage the order is the draw order.
        Assert.Equal(Enumerable.Range(0, 20), NoiseSampleStream.LookOrder(20, [4, 10], [4, 10]));
        Assert.Equal(Enumerable.Range(0, 20), NoiseSampleStream.LookOrder(20, [4, 10], []));
    }

    [Fact]
    public void TheLookOrderSpendsTheSameNoiseForTheSameTimestep()
    {
        var shape = new long[] { 1, 2, 2 };
        using var plain = new NoiseSampleStream(7, 20, TimestepStrategy.Stratified, Scheduler, [4, 10], shape);
        using var looked = new NoiseSampleStream(7, 20, TimestepStrategy.Stratified, Scheduler, [4, 10], shape, looks: [4, 6, 9, 14]);
        var byTime = new Dictionary<int, float[]>();
        for (int i = 0; i < 20; i++)
        {
            using var eps = plain.NextNoise(i);
            byTime[plain.Timesteps[i]] = eps.data<float>().ToArray();
        }
        Assert.NotEqual(plain.Timesteps, looked.Timesteps);
        for (int i = 0; i < 20; i++)
        {
            using var eps = looked.NextNoise(i);
            Assert.Equal(byTime[looked.Timesteps[i]], eps.data<float>().ToArray());
        }
    }

    [Fact]
    public void StratifiedTimestepsWithPruningSpreadEveryStagePrefix()
    {
        // n = 50 with stages after 10 and 25 samples: the first 10 are every fifth grid point (the centres of 10
        // strata), the first 25 leave no gap wider than 2.5 strata of 25, and all 50 are the whole grid.
        var grid = Scheduler.EvenlySpacedTimesteps(50);
        var t = NoiseSampleStream.StratifiedTimesteps(Scheduler, 50, new[] { 10, 25 });
        Assert.Equal(Enumerable.Range(0, 10).Select(k => grid[5 * k + 2]), t.Take(10));
        Assert.Equal(25, t.Take(25).Distinct().Count());
        Assert.True(MaxGap(t.Take(25)) <= 2.5 * 50 / 25, $"gap {MaxGap(t.Take(25))}");
        Assert.Equal(grid, t.Order());

        // Uneven boundaries: still a permutation of the grid, and the first stage spans the whole range.
        var u = NoiseSampleStream.StratifiedTimesteps(Scheduler, 20, new[] { 3, 7 });
        Assert.Equal(Scheduler.EvenlySpacedTimesteps(20), u.Order());
        Assert.True(u[0] <= 10 && u[2] >= 40, string.Join(", ", u.Take(3)));

        using var model = TinyModels.Create();
        using var classifier = new BayesClassifier(model, Scheduler, BayesClassifierOptions.Default with
        {
            Pruning = new PruningSchedule(new PruningStage(0.2, 3), new PruningStage(0.5, 2)),
            EarlyExit = null,
        });
        var (drawn, noise) = classifier.DrawNoise(50);
        noise.Dispose();
        Assert.Equal(t, drawn);
    }
}
