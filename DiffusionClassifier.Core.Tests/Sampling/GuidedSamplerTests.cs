using DiffusionClassifier.Imaging;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Sampling;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Tests.TestSupport;
using TorchSharp;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Sampling;

[Collection(SingleThreadedTorchCollection.Name)]
public sealed class GuidedSamplerTests : IDisposable
{
    private readonly SingleThreadedTorch threads = new();
    private const int T = 12;
    private static readonly int[] Labels = { 3, 0, 9, 3, 7, 1, 5 };
    private readonly ConditionalUNet net = LabelSensitiveModel();
    private readonly DdpmScheduler scheduler = new(T);

    /// <summary>
    /// A tiny model whose prediction really depends on the label. In a freshly initialised network the label enters
    /// only before ten convolutions without residual paths (up1, up2, out), each shrinking the signal about 3x, so
    /// conditional and unconditional predictions differ by ~1e-5 relative and guidance would be invisible. Scaling the
    /// convolution weights of up1 and up2 by 4 restores a label effect of ~30% of the prediction.
    /// </summary>
    private static ConditionalUNet LabelSensitiveModel()
    {
        var model = TinyModels.Create(seed: 77);
        using (no_grad())
        {
            foreach (var (name, parameter) in model.named_parameters())
                if ((name.StartsWith("up1.") || name.StartsWith("up2.")) && parameter.dim() == 4)
                    parameter.mul_(4);
        }
        model.eval();
        return model;
    }

    public void Dispose()
    {
        net.Dispose();
        threads.Dispose();
    }

    /// <summary>
    /// An independent implementation of the reference sampling loop: plain <c>forward</c> calls on the literal doubled
    /// batch (x.repeat(2), mask = [0..0, 1..1]) as the reference does, and the reverse step written out from the
    /// float64 schedule of docs/algorithm.md §2. With w = 0 it is purely conditional sampling with no mask at all.
    /// Returns x_{T-1}, ..., x_0: x_t is entry T - 1 - t.
    /// </summary>
    private static List<Tensor> ReferenceTrajectory(ConditionalUNet model, int[] labels, long seed, double w, int steps = T)
    {
        double beta1 = 1e-4, beta2 = 0.02;
        var beta = new double[steps + 1];
        var alphaBar = new double[steps + 1];
        double product = 1;
        for (int t = 0; t <= steps; t++)
        {
            beta[t] = beta1 + (beta2 - beta1) * t / steps;
            product *= 1 - beta[t];
            alphaBar[t] = product;
        }

        using var noGrad = no_grad();
        var g = new Generator((ulong)seed, CPU);
        long b = labels.Length;
        long[] shape = { b, 1, 8, 8 };
        var c = tensor(labels.Select(l => (long)l).ToArray());
        var x = randn(shape, ScalarType.Float32, generator: g);
        var trajectory = new List<Tensor>();
        for (int i = steps; i >= 1; i--)
        {
            var z = i > 1 ? randn(shape, ScalarType.Float32, generator: g) : zeros(shape);
            var tIs = full(new[] { b }, i / (double)steps, ScalarType.Float32);
            Tensor eps;
            if (w == 0)
            {
                eps = model.forward(x, c, tIs);
            }
            else
            {
                var mask = cat([zeros(b), ones(b)]);
                var out2 = model.forward(x.repeat(2, 1, 1, 1), c.repeat(2), tIs.repeat(2), mask);
                eps = (1 + w) * out2[TensorIndex.Slice(0, b)] - w * out2[TensorIndex.Slice(b)];
            }
            double oneOverSqrtA = 1 / Math.Sqrt(1 - beta[i]);
            double mabOverSqrtMab = beta[i] / Math.Sqrt(1 - alphaBar[i]);
            x = oneOverSqrtA * (x - eps * mabOverSqrtMab) + Math.Sqrt(beta[i]) * z;
            trajectory.Add(x);
        }
        return trajectory;
    }

    private GuidedSampler Sampler(double w, long seed = 5, int chunk = 64, int captureEvery = 0) =>
        new(net, scheduler, new GuidedSamplerOptions { GuidanceWeight = w, Seed = seed, ChunkSize = chunk, CaptureEvery = captureEvery });

    private static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    private static bool BitEqual(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void TheTestModelsPredictionDependsOnTheLabel()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = randn(new long[] { 7, 1, 8, 8 }, generator: new Generator(9, CPU));
        var c = tensor(Labels.Select(l => (long)l).ToArray());
        var t = full(7, 0.5f);
        var conditional = net.forward(x, c, t, zeros(7));
        var unconditional = net.forward(x, c, t, ones(7));
        Assert.True((conditional - unconditional).abs().mean().item<float>() > 0.1 * conditional.abs().mean().item<float>());
    }

    [Fact]
    public void WithoutGuidanceItEqualsPurelyConditionalSampling()
    {
        using var scope = NewDisposeScope();
        using var result = Sampler(0, seed: 11, chunk: 3, captureEvery: 5).Sample(Labels);
        var reference = ReferenceTrajectory(net, Labels, 11, w: 0);

        Assert.Equal(new long[] { Labels.Length, 1, 8, 8 }, result.Images.shape);
        Assert.InRange(MaxDiff(result.Images, reference[^1]), 0, 1e-5);
        // The captured intermediate states follow the same trajectory.
        Assert.Equal(new[] { 7, 2, 0 }, result.StepTimesteps);
        for (int s = 0; s < result.StepTimesteps.Count; s++)
            Assert.InRange(MaxDiff(result.Steps![s], reference[T - 1 - result.StepTimesteps[s]]), 0, 1e-5);
        // Not trivially equal: the images depend on the labels and moved away from the start noise.
        Assert.True(result.Images.abs().mean().item<float>() > 0.05);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(2.0)]
    public void GuidanceEqualsTheReferenceCombinationOfConditionalAndUnconditionalNoise(double w)
    {
        using var scope = NewDisposeScope();
        using var result = Sampler(w, seed: 21, chunk: 4).Sample(Labels);
        var reference = ReferenceTrajectory(net, Labels, 21, w);
        Assert.InRange(MaxDiff(result.Images, reference[^1]), 0, 1e-4);

        // The guidance term matters: w = 0 and the unconditional network give visibly different images.
        using var plain = Sampler(0, seed: 21).Sample(Labels);
        Assert.True(MaxDiff(result.Images, plain.Images) > 1e-2);
    }

    [Fact]
    public void SameSeedGivesBitIdenticalImagesAndTheChunkSizeOnlyChangesRounding()
    {
        using var scope = NewDisposeScope();
        var labels = Enumerable.Range(0, 10).ToArray();
        using var first = Sampler(2, seed: 3, chunk: 64).Sample(labels);
        using var again = Sampler(2, seed: 3, chunk: 64).Sample(labels);
        Assert.True(BitEqual(first.Images, again.Images));
        using var chunked = Sampler(2, seed: 3, chunk: 3).Sample(labels);
        using var chunkedAgain = Sampler(2, seed: 3, chunk: 3).Sample(labels);
        Assert.True(BitEqual(chunked.Images, chunkedAgain.Images));
        // The noise is drawn for the whole batch, so chunks see the same noise; only oneDNN's batch-size-dependent
        // kernels round differently (seen: 1.2e-6).
        Assert.InRange(MaxDiff(first.Images, chunked.Images), 0, 1e-5);
        using var other = Sampler(2, seed: 4, chunk: 64).Sample(labels);
        Assert.True(MaxDiff(first.Images, other.Images) > 0.1);

        // The tensor overload and a label tensor on the CPU give the same images.
        using var fromTensor = Sampler(2, seed: 3).Sample(tensor(labels.Select(l => (long)l).ToArray()));
        Assert.True(BitEqual(first.Images, fromTensor.Images));
    }

    [Theory]
    [InlineData(1, new[] { 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0 })]
    [InlineData(5, new[] { 7, 2, 0 })]
    [InlineData(25, new[] { 0 })]
    public void CapturedStepsAreEveryKStepsPlusTheFinalImages(int every, int[] expected)
    {
        using var scope = NewDisposeScope();
        using var result = Sampler(1, captureEvery: every).Sample(Labels);
        Assert.Equal(expected, result.StepTimesteps);
        Assert.Equal(new long[] { expected.Length, Labels.Length, 1, 8, 8 }, result.Steps!.shape);
        Assert.True(BitEqual(result.Steps[expected.Length - 1], result.Images));
        // Earlier steps are noisier than the result (the trajectory is really captured, not copies of x_0).
        Assert.True(expected.Length == 1 || MaxDiff(result.Steps[0], result.Images) > 0.1);

        using var none = Sampler(1).Sample(Labels);
        Assert.Null(none.Steps);
        Assert.Empty(none.StepTimesteps);
        Assert.True(BitEqual(none.Images, result.Images));
    }

    [Fact]
    public void BadOptionsThrowNamingTheSettingAndValue()
    {
        void Check(Func<GuidedSamplerOptions, GuidedSamplerOptions> set, string name)
        {
            var options = set(new GuidedSamplerOptions());
            var e = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
            Assert.Equal(name, e.ParamName);
            Assert.NotNull(e.ActualValue);
            Assert.Throws<ArgumentOutOfRangeException>(() => new GuidedSampler(net, scheduler, options));
        }
        Check(o => o with { GuidanceWeight = -0.1 }, nameof(GuidedSamplerOptions.GuidanceWeight));
        Check(o => o with { GuidanceWeight = double.NaN }, nameof(GuidedSamplerOptions.GuidanceWeight));
        Check(o => o with { GuidanceWeight = double.PositiveInfinity }, nameof(GuidedSamplerOptions.GuidanceWeight));
        Check(o => o with { ChunkSize = 0 }, nameof(GuidedSamplerOptions.ChunkSize));
        Check(o => o with { CaptureEvery = -1 }, nameof(GuidedSamplerOptions.CaptureEvery));
        new GuidedSamplerOptions().Validate();
        Assert.Equal(2.0, new GuidedSamplerOptions().GuidanceWeight);

        var wrongDevice = new GuidedSamplerOptions { Device = "gpu9" };
        var error = Assert.Throws<ArgumentException>(() => new GuidedSampler(net, scheduler, wrongDevice));
        Assert.Equal(nameof(GuidedSamplerOptions.Device), error.ParamName);
        Assert.Contains("'gpu9'", error.Message);
        Assert.Throws<ArgumentNullException>(() => new GuidedSampler(null!, scheduler));
    }

    [Fact]
    public void BadLabelsThrowNamingTheValue()
    {
        using var scope = NewDisposeScope();
        var sampler = Sampler(1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample(new[] { 1, 10 }));
        Assert.Equal("labels", e.ParamName);
        Assert.Equal(10, e.ActualValue);
        Assert.Contains("labels[1]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample(new[] { -1 }));
        Assert.Throws<ArgumentException>(() => sampler.Sample(Array.Empty<int>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Sample(tensor(new long[] { 2, 12 })));
        Assert.Throws<ArgumentException>(() => sampler.Sample(tensor(new float[] { 1, 2 })));
        Assert.Throws<ArgumentException>(() => sampler.Sample(zeros(new long[] { 2, 2 }, ScalarType.Int64)));
        Assert.Throws<ArgumentException>(() => sampler.Sample(zeros(new long[] { 0 }, ScalarType.Int64)));
        Assert.Equal("samplesPerLabel", Assert.Throws<ArgumentOutOfRangeException>(() => sampler.SampleGrid(0)).ParamName);
    }

    [Fact]
    public void CancellationStopsWithinOneStepAndRestoresTrainingMode()
    {
        using var scope = NewDisposeScope();
        using var cts = new CancellationTokenSource();
        var reports = new List<SamplingProgress>();
        var progress = new SyncProgress<SamplingProgress>(p =>
        {
            reports.Add(p);
            if (p.Step == 3) cts.Cancel();
        });
        net.train();
        Assert.ThrowsAny<OperationCanceledException>(() => Sampler(1).Sample(Labels, progress, cts.Token));
        Assert.Equal(3, reports.Count);
        Assert.Equal(new[] { 12, 11, 10 }, reports.Select(r => r.Timestep));
        Assert.Equal(T, reports[0].TotalSteps);
        Assert.True(net.training, "the model's training mode was not restored");

        Assert.ThrowsAny<OperationCanceledException>(() => Sampler(1).Sample(Labels, cancellationToken: cts.Token));
        net.eval();
    }

    [Fact]
    public void AModelInTrainingModeIsSampledInEvalModeAndSwitchedBack()
    {
        using var scope = NewDisposeScope();
        using var evalResult = Sampler(1).Sample(Labels);
        net.train();
        using var trainResult = Sampler(1).Sample(Labels);
        Assert.True(net.training);
        net.eval();
        Assert.True(BitEqual(evalResult.Images, trainResult.Images));
    }

    [Fact]
    public void ProgressCountsDownEveryStep()
    {
        var reports = new List<SamplingProgress>();
        using var result = Sampler(1).Sample(new[] { 2 }, new SyncProgress<SamplingProgress>(reports.Add));
        Assert.Equal(Enumerable.Range(1, T), reports.Select(r => r.Step));
        Assert.Equal(Enumerable.Range(1, T).Reverse(), reports.Select(r => r.Timestep));
        Assert.Equal(1.0, reports[^1].Fraction);
    }

    [Fact]
    public void NoTensorOutlivesTheResult()
    {
        var labels = Enumerable.Range(0, 10).ToArray();
        Sampler(2, chunk: 3, captureEvery: 4).Sample(labels).Dispose(); // warm up lazily created state
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var result = Sampler(2, chunk: 3, captureEvery: 4).Sample(labels))
            Assert.True(result.Images.numel() > 0);
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void SampleGridIsLabelMajorAndSavesOneRowPerLabel()
    {
        using var scope = NewDisposeScope();
        var folder = Directory.CreateTempSubdirectory("dc-sampler-").FullName;
        try
        {
            using var grid = Sampler(1, captureEvery: 5).SampleGrid(2);
            Assert.Equal(new[] { 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9 }, grid.Labels);
            Assert.Equal(20, grid.Images.shape[0]);

            string path = Path.Combine(folder, "grid.png");
            grid.SaveGrid(path);
            var png = ImageIO.LoadImage(path, 2 * 10 + 2, 10 * 10 + 2);
            var expected = ImageGrid.Compose(grid.Images.clamp(0, 1), GridLayout.ByLabel(grid.Labels));
            Assert.True(png[0, 0].allclose(expected[0], rtol: 0, atol: 0.5 / 255 + 1e-6));
            // Row 7, column 1 holds the second sample of label 7 (image 15).
            Assert.True(png[0, 0, TensorIndex.Slice(72, 80), TensorIndex.Slice(12, 20)]
                .allclose(grid.Images[15, 0].clamp(0, 1), rtol: 0, atol: 0.5 / 255 + 1e-6));

            string steps = Path.Combine(folder, "steps.png");
            grid.SaveSteps(steps);
            var strip = ImageIO.LoadImage(steps, 10 * 10 + 2, 3 * 10 + 2);
            // Row s, column k: captured step s of the first sample of label k (image 2k).
            Assert.True(strip[0, 0, TensorIndex.Slice(12, 20), TensorIndex.Slice(32, 40)]
                .allclose(grid.Steps![1, 6, 0].clamp(0, 1), rtol: 0, atol: 0.5 / 255 + 1e-6));

            using var noSteps = Sampler(1).Sample(new[] { 1 });
            Assert.Throws<InvalidOperationException>(() => noSteps.SaveSteps(steps));
            Assert.Throws<ArgumentOutOfRangeException>(() => grid.SaveSteps(steps, new[] { 20 }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
