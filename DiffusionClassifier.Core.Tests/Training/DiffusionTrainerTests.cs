using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Training;

public sealed class DiffusionTrainerTests : IDisposable
{
    private readonly TrainerModels models = new();

    public void Dispose() => models.Dispose();

    // One libtorch thread: on the shared 2-core machine two spinning OpenMP threads were ~10x slower under load.
    private static TrainingOptions Tiny(int epochs = 3, int batch = 16) => new()
    {
        Epochs = epochs, BatchSize = batch, LearningRate = 1e-3, EmaDecay = 0, Seed = 11, NumThreads = 1,
        CheckpointInterval = TimeSpan.Zero,
    };

    [Fact]
    public void LossFallsOnASmallClassDependentSet()
    {
        // 200 8x8 images, 10 classes, 6 epochs of 10 steps. Measured over 8 seed pairs: mean loss of the last 10
        // steps / first 10 steps = 0.30..0.38 (first ~0.68..0.89, last ~0.24..0.30); an untrained net stays ~0.8-1.3.
        var (images, labels) = SyntheticDigits.Create(200);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var options = Tiny(epochs: 6, batch: 20);
        options = options with { LearningRate = 2e-3 };
        options = options with { Seed = 1 };
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
        var result = trainer.Train(new TensorTrainingData(images, labels));
        Assert.Equal(60, result.StepsRun);
        double first = result.StepLosses.Take(10).Average(), last = result.StepLosses.TakeLast(10).Average();
        Assert.True(last < 0.55 * first, $"loss did not fall enough: first 10 steps {first:F4}, last 10 {last:F4}");
        Assert.True(last < 0.45, $"final loss {last:F4} is too high");
        Assert.Equal(6, result.EpochMeanLosses.Count);
        Assert.True(result.EpochMeanLosses[^1] < result.EpochMeanLosses[0]);
        Assert.Equal(6, trainer.CompletedEpochs);
        Assert.Equal(60, trainer.CompletedSteps);
    }

    [Theory]
    [InlineData(LearningRateSchedule.LinearPerEpoch)]
    [InlineData(LearningRateSchedule.LinearPerStep)]
    [InlineData(LearningRateSchedule.Cosine)]
    public void ReportedLearningRateIsTheOptimizersAndFollowsTheFormula(LearningRateSchedule schedule)
    {
        var (images, labels) = SyntheticDigits.Random(40);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var options = Tiny(epochs: 4, batch: 16);
        // The cosine run also warms up for 2 steps, so the hand-over from warm-up to decay is checked.
        options = options with { LearningRateSchedule = schedule, WarmupSteps = schedule == LearningRateSchedule.Cosine ? 2 : 0 };
        var reports = new List<TrainingProgress>();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
        trainer.Train(new TensorTrainingData(images, labels), new SyncProgress<TrainingProgress>(reports.Add));
        Assert.Equal(12, reports.Count); // ceil(40 / 16) = 3 steps per epoch, the last one of 8 images
        for (int i = 0; i < reports.Count; i++)
        {
            var p = reports[i];
            Assert.Equal(i / 3 + 1, p.Epoch);
            Assert.Equal(i % 3 + 1, p.StepInEpoch);
            Assert.Equal(i + 1, p.Step);
            Assert.Equal(12, p.TotalSteps);
            double expected = schedule switch
            {
                LearningRateSchedule.LinearPerEpoch => 1e-3 * (1 - (p.Epoch - 1) / 4.0),
                LearningRateSchedule.LinearPerStep => 1e-3 * (1 - i / 12.0),
                _ => i < 2 ? 1e-3 * (i + 1) / 2.0 : 1e-3 * (1 + Math.Cos(Math.PI * (i - 2) / 10.0)) / 2,
            };
            Assert.Equal(expected, p.LearningRate, 15);
        }
        // Running mean within each epoch.
        Assert.Equal((reports[3].Loss + reports[4].Loss) / 2.0, reports[4].EpochMeanLoss, 6);
    }

    [Theory]
    [InlineData(5, false)]
    [InlineData(6, true)]
    [InlineData(9, true)]
    public void WarnsWhenEveryStepIsAWarmUpStep(int warmup, bool warns)
    {
        // 40 images in batches of 16 for 2 epochs: 6 steps. With W >= 6 every step is a warm-up step: the rate rises
        // by (s + 1) / W, and the last step runs at 6 / W of it.
        var (images, labels) = SyntheticDigits.Random(40);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var options = Tiny(epochs: 2, batch: 16) with { LearningRateSchedule = LearningRateSchedule.Constant, WarmupSteps = warmup };
        var logger = new ListLogger<DiffusionTrainer>();
        var reports = new List<TrainingProgress>();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options, logger);
        trainer.Train(new TensorTrainingData(images, labels), new SyncProgress<TrainingProgress>(reports.Add));

        var warnings = logger.Entries.Where(e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning).Select(e => e.Message).ToList();
        if (warns)
        {
            string warning = Assert.Single(warnings);
            Assert.Contains($"WarmupSteps {warmup} ", warning, StringComparison.Ordinal);
            Assert.Contains("6 steps", warning, StringComparison.Ordinal);
            Assert.Contains($"6/{warmup} of the scheduled", warning, StringComparison.Ordinal);
        }
        else
        {
            Assert.Empty(warnings);
        }
        Assert.Equal(6, reports.Count);
        for (int i = 0; i < reports.Count; i++)
            Assert.Equal(1e-3 * Math.Min(i + 1, warmup) / warmup, reports[i].LearningRate, 15);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1e-7)]
    public void FirstAdamStepMovesEveryWeightByAtMostTheLearningRate(double clipNorm)
    {
        // Adam's first update is -lr * g / (|g| + eps): each weight moves by about lr where |g| >> eps = 1e-8. Clipping
        // the global gradient norm to 1e-7 makes every |g| << eps (over ~26k parameters), so the typical move shrinks far below lr.
        var (images, labels) = SyntheticDigits.Random(16);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var options = Tiny(epochs: 1, batch: 16);
        options = options with { GradientClipNorm = clipNorm };
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
        trainer.Train(new TensorTrainingData(images, labels));
        var moves = new List<float>();
        foreach (var (name, p) in model.named_parameters())
        {
            using var d = (p.detach() - before[name]).abs();
            moves.AddRange(d.data<float>().ToArray());
        }
        foreach (var t in before.Values) t.Dispose();
        moves.Sort();
        float median = moves[moves.Count / 2], max = moves[^1];
        Assert.True(max <= 1e-3 * 1.0001, $"largest move {max}");
        if (clipNorm == 0)
            Assert.True(median > 0.9e-3, $"median move {median}");
        else
            Assert.True(median < 0.2e-3, $"with clipping the median move is {median}");
    }

    [Fact]
    public void MinSnrWeightIsMinOfSnrAndGammaOverSnr()
    {
        // SNR_t from the schedule's betas directly, in float64: alphabar_t = prod_{s<=t} (1 - beta_s).
        var scheduler = new DdpmScheduler();
        double alphaBar = 1;
        for (int t = 0; t <= scheduler.NumTrainTimesteps; t++)
        {
            alphaBar *= 1 - (1e-4 + (0.02 - 1e-4) * t / scheduler.NumTrainTimesteps);
            double snr = alphaBar / (1 - alphaBar);
            if (t == 0)
                continue;
            double expected = snr <= 5 ? 1 : 5 / snr;
            Assert.Equal(expected, DiffusionTrainer.MinSnrWeight(scheduler, t, 5), 1e-9);
        }
        // The low timesteps are damped (SNR_1 is about 4,000), the high ones keep weight 1.
        Assert.InRange(DiffusionTrainer.MinSnrWeight(scheduler, 1, 5), 1e-3, 1.5e-3);
        Assert.Equal(1, DiffusionTrainer.MinSnrWeight(scheduler, 400, 5));
    }

    [Fact]
    public void MinSnrLossIsTheMseWhenGammaExceedsEverySnrAndSmallerOtherwise()
    {
        var (images, labels) = SyntheticDigits.Create(32);
        using var _ = images;
        using var __ = labels;
        float FirstLoss(double? gamma)
        {
            using var model = models.Create();
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Tiny(epochs: 1) with { MinSnrGamma = gamma });
            return trainer.Train(new TensorTrainingData(images, labels)).StepLosses[0];
        }
        float plain = FirstLoss(null), huge = FirstLoss(1e12), five = FirstLoss(5);
        // Same seed, same model: the same draws; weights of 1 give the plain MSE up to rounding.
        Assert.Equal(plain, huge, plain * 1e-5);
        // Weights in (0, 1], below 1 for t < 84: a 16-sample batch of this seed has such samples.
        Assert.True(five < 0.99 * plain, $"min-SNR {five} vs plain {plain}");
    }

    [Fact]
    public void NonFiniteLossStopsTrainingWithoutACheckpoint()
    {
        var (images, labels) = SyntheticDigits.Random(64);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        string path = Path.Combine(Path.GetTempPath(), $"nan-{Guid.NewGuid():N}.safetensors");
        var options = Tiny(epochs: 2);
        options = options with { LearningRate = 1e30 }; // the first update moves every weight by 1e30
        options = options with { CheckpointPath = path };
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
        var ex = Assert.Throws<InvalidOperationException>(() => trainer.Train(new TensorTrainingData(images, labels)));
        Assert.Contains("loss became", ex.Message);
        Assert.True(trainer.CompletedSteps is >= 1 and < 4, $"stopped after {trainer.CompletedSteps} steps");
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void UnavailableDeviceIsRefused()
    {
        if (cuda.is_available()) return; // only meaningful without CUDA (xunit 2 has no dynamic skip)
        using var model = models.Create();
        var options = Tiny();
        options = options with { Device = "cuda" };
        var ex = Assert.Throws<ArgumentException>(() => new DiffusionTrainer(model, new DdpmScheduler(), options));
        Assert.Equal("options", ex.ParamName);
        Assert.Contains("cuda", ex.Message);
    }

    [Fact]
    public void LabelDropFractionMatchesTheProbability()
    {
        using var model = models.Create();
        foreach (double p in new[] { 0.1, 0.35 })
        {
            var options = Tiny();
            options = options with { LabelDropProbability = p };
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
            long dropped = 0, total = 0, tMin = long.MaxValue, tMax = long.MinValue;
            for (int i = 0; i < 200; i++)
            {
                var (t, eps, mask) = trainer.DrawNoise(128);
                using (t) using (eps) using (mask)
                {
                    Assert.True(mask.eq(0).logical_or(mask.eq(1)).all().item<bool>());
                    dropped += (long)mask.sum().item<float>();
                    total += 128;
                    tMin = Math.Min(tMin, t.min().item<long>());
                    tMax = Math.Max(tMax, t.max().item<long>());
                }
            }
            // 25,600 Bernoulli(p) draws: standard deviation of the fraction sqrt(p(1-p)/n) <= 0.0031; allow 5 sigma.
            double fraction = (double)dropped / total, sigma = Math.Sqrt(p * (1 - p) / total);
            Assert.True(Math.Abs(fraction - p) < 5 * sigma, $"p = {p}: dropped fraction {fraction:F4}, 5 sigma = {5 * sigma:F4}");
            Assert.Equal(1, tMin);
            Assert.Equal(400, tMax);
        }
        foreach (double p in new[] { 0.0, 1.0 })
        {
            var options = Tiny();
            options = options with { LabelDropProbability = p };
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
            var (t, eps, mask) = trainer.DrawNoise(1000);
            using (t) using (eps) using (mask)
                Assert.Equal(p * 1000, mask.sum().item<float>());
        }
    }

    [Fact]
    public void DroppingEveryLabelLeavesTheLabelEmbeddingWeightsUntouched()
    {
        // With every label dropped the one-hot input is zero, so contextembed*.model.0.weight gets zero gradients and
        // Adam leaves it exactly as it was; with no label dropped it moves. Checks that the mask reaches the network.
        var (images, labels) = SyntheticDigits.Random(32);
        using var _ = images;
        using var __ = labels;
        foreach (double p in new[] { 1.0, 0.0 })
        {
            using var model = models.Create();
            using var before = model.state_dict()["contextembed1.model.0.weight"].detach().clone();
            using var timeBefore = model.state_dict()["timeembed1.model.0.weight"].detach().clone();
            var options = Tiny(epochs: 1);
            options = options with { LabelDropProbability = p };
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
            trainer.Train(new TensorTrainingData(images, labels));
            bool same = Same(model.state_dict()["contextembed1.model.0.weight"], before);
            Assert.Equal(p == 1.0, same);
            Assert.False(Same(model.state_dict()["timeembed1.model.0.weight"], timeBefore));
        }
    }

    [Fact]
    public void EmaExportFollowsTheDocumentedFormula()
    {
        var (images, labels) = SyntheticDigits.Random(48);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var key = "up1.model.0.weight";
        using var w0 = model.state_dict()[key].detach().to(ScalarType.Float64);
        var snapshots = new List<Tensor>();
        var options = Tiny(epochs: 1, batch: 8); // 6 steps
        options = options with { EmaDecay = 0.7 };
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
        trainer.Train(new TensorTrainingData(images, labels),
            new SyncProgress<TrainingProgress>(_ => snapshots.Add(model.state_dict()[key].detach().to(ScalarType.Float64).DetachFromDisposeScope())));
        Assert.Equal(6, snapshots.Count);
        var expected = w0.clone();
        for (int n = 0; n < snapshots.Count; n++)
        {
            double d = Math.Min(0.7, (1.0 + n) / (10.0 + n));
            expected = expected * d + snapshots[n] * (1 - d);
        }
        string path = Path.Combine(Path.GetTempPath(), $"ema-{Guid.NewGuid():N}.safetensors");
        try
        {
            trainer.SaveModel(path, useEma: true);
            using var loaded = ModelFile.Load(path);
            Assert.Equal("ema", loaded.Metadata["weights"]);
            using var actual = loaded.Model.state_dict()[key].to(ScalarType.Float64);
            double err = (actual - expected).abs().max().item<double>();
            Assert.True(err < 1e-6, $"EMA differs from the formula by {err}");
            // The raw weights are back in the trained model and differ from the EMA.
            Assert.True(Same(model.state_dict()[key].to(ScalarType.Float64), snapshots[^1]));
            Assert.False(actual.allclose(snapshots[^1]));
            trainer.SaveModel(path, useEma: false);
            using var raw = ModelFile.Load(path);
            Assert.True(Same(raw.Model.state_dict()[key], model.state_dict()[key]));
        }
        finally
        {
            File.Delete(path);
            foreach (var s in snapshots) s.Dispose();
            expected.Dispose();
        }
    }

    [Fact]
    public void SaveModelWithEmaWhenEmaIsOffThrows()
    {
        using var model = models.Create();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Tiny());
        Assert.False(trainer.HasEma);
        var ex = Assert.Throws<InvalidOperationException>(() => trainer.SaveModel(Path.Combine(Path.GetTempPath(), "never.safetensors"), useEma: true));
        Assert.Contains("EmaDecay", ex.Message);
    }

    [Fact]
    public void NoTensorsAccumulateAcrossStepsOrCheckpoints()
    {
        var (images, labels) = SyntheticDigits.Random(64);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        string path = Path.Combine(Path.GetTempPath(), $"leak-{Guid.NewGuid():N}.safetensors");
        var options = Tiny(epochs: 3, batch: 8); // 24 steps
        options = options with { EmaDecay = 0.9 };
        options = options with { CheckpointPath = path };
        options = options with { CheckpointEverySteps = 3 };
        var live = new List<long>();
        try
        {
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
            // Progress runs on the training thread, whose dispose-scope statistics count live tensors.
            trainer.Train(new TensorTrainingData(images, labels),
                new SyncProgress<TrainingProgress>(_ => live.Add(TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount)));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Equal(24, live.Count);
        Assert.True(live.Skip(2).All(n => n == live[2]), $"live tensors per step: {string.Join(", ", live)}");
    }

    [Fact]
    public void TrainingWorksInsideAnAmbientNoGradScope()
    {
        var (images, labels) = SyntheticDigits.Random(16);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Tiny(epochs: 1));
        using var noGrad = no_grad();
        Assert.Equal(1, trainer.Train(new TensorTrainingData(images, labels)).StepsRun);
        Assert.False(is_grad_enabled());
    }

    [Fact]
    public void TrainingIsReproducibleForASeedAndDiffersForAnother()
    {
        var (images, labels) = SyntheticDigits.Random(32);
        using var _ = images;
        using var __ = labels;
        IReadOnlyList<float> Run(long seed)
        {
            using var model = models.Create();
            var options = Tiny(epochs: 2);
            options = options with { Seed = seed };
            using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options);
            return trainer.Train(new TensorTrainingData(images, labels)).StepLosses;
        }
        var a = Run(3);
        Assert.Equal(a, Run(3));
        Assert.NotEqual(a, Run(4));
    }

    public static TheoryData<string, Func<(Tensor, Tensor)>, string> BadData => new()
    {
        { "wrong size", () => (rand(new long[] { 4, 1, 12, 12 }, generator: new Generator(1)), zeros(4, ScalarType.Int64)), "[4, 1, 8, 8]" },
        { "wrong channels", () => (rand(new long[] { 4, 3, 8, 8 }, generator: new Generator(1)), zeros(4, ScalarType.Int64)), "[4, 1, 8, 8]" },
        { "label 10", () => (rand(new long[] { 4, 1, 8, 8 }, generator: new Generator(1)), full(4, 10L, ScalarType.Int64)), "from 10 to 10" },
        { "out of range", () => (rand(new long[] { 4, 1, 8, 8 }, generator: new Generator(1)) * 255, zeros(4, ScalarType.Int64)), "[0, 1]" },
        { "NaN", () => (full(new long[] { 4, 1, 8, 8 }, float.NaN), zeros(4, ScalarType.Int64)), "NaN" },
        { "float64", () => (rand(new long[] { 4, 1, 8, 8 }, ScalarType.Float64, generator: new Generator(1)), zeros(4, ScalarType.Int64)), "Float64" },
    };

    [Theory]
    [MemberData(nameof(BadData))]
    public void BatchesThatDoNotFitTheModelAreRefusedBeforeAnyUpdate(string name, Func<(Tensor, Tensor)> make, string expected)
    {
        var (images, labels) = make();
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        using var before = model.state_dict()["out.3.weight"].detach().clone();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Tiny());
        var ex = Assert.Throws<ArgumentException>(() => trainer.Train(new RawData(images, labels)));
        Assert.Equal("data", ex.ParamName);
        Assert.Contains(expected, ex.Message);
        Assert.True(Same(model.state_dict()["out.3.weight"], before), name);
        Assert.Equal(0, trainer.CompletedSteps);
    }

    [Fact]
    public void TensorTrainingDataValidatesItsInput()
    {
        using var img = rand(new long[] { 4, 1, 8, 8 }, generator: new Generator(1));
        using var lab = zeros(4, ScalarType.Int64);
        using var img3 = rand(new long[] { 4, 8, 8 }, generator: new Generator(2));
        using var bigger = rand(new long[] { 4, 1, 8, 8 }, generator: new Generator(1)) + 1;
        using var labF = zeros(4);
        using var lab5 = zeros(5, ScalarType.Int64);
        using var neg = full(4, -1L, ScalarType.Int64);
        Assert.Equal("images", Assert.Throws<ArgumentException>(() => new TensorTrainingData(img3, lab)).ParamName);
        Assert.Equal("images", Assert.Throws<ArgumentException>(() => new TensorTrainingData(bigger, lab)).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => new TensorTrainingData(img, labF)).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => new TensorTrainingData(img, lab5)).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => new TensorTrainingData(img, neg)).ParamName);
        var data = new TensorTrainingData(img, lab);
        Assert.Throws<ArgumentOutOfRangeException>("indices", () => data.GetBatch(new long[] { 0, 4 }));
        var (x, y) = data.GetBatch(new long[] { 2, 0 });
        using (x) using (y)
        {
            Assert.True(Same(x[0], img[2]));
            Assert.True(Same(x[1], img[0]));
        }
    }

    [Fact]
    public void UseAfterDisposeThrowsObjectDisposed()
    {
        var (images, labels) = SyntheticDigits.Random(16);
        using var _ = images;
        using var __ = labels;
        using var model = models.Create();
        var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Tiny());
        trainer.Dispose();
        trainer.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => trainer.Train(new TensorTrainingData(images, labels)));
        Assert.Throws<ObjectDisposedException>(() => trainer.SaveCheckpoint("x.safetensors"));
        Assert.Throws<ObjectDisposedException>(() => trainer.LoadCheckpoint("x.safetensors"));
        Assert.Throws<ObjectDisposedException>(() => trainer.SaveModel("x.safetensors", useEma: false));
        // The model is not owned by the trainer and still works.
        using var y = model.forward(images, labels, full(16, 0.5f));
        Assert.Equal(images.shape, y.shape);
    }

    [Fact]
    public void ConstructorRefusesInvalidOptionsAndNulls()
    {
        using var model = models.Create();
        var bad = Tiny();
        bad = bad with { BatchSize = 0 };
        Assert.Equal("BatchSize", Assert.Throws<ArgumentOutOfRangeException>(() => new DiffusionTrainer(model, new DdpmScheduler(), bad)).ParamName);
        Assert.Throws<ArgumentNullException>(() => new DiffusionTrainer(null!, new DdpmScheduler(), Tiny()));
        Assert.Throws<ArgumentNullException>(() => new DiffusionTrainer(model, null!, Tiny()));
        Assert.Throws<ArgumentNullException>(() => new DiffusionTrainer(model, new DdpmScheduler(), null!));
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>Data without TensorTrainingData's checks, to reach the trainer's own validation.</summary>
    private sealed class RawData(Tensor images, Tensor labels) : ITrainingData
    {
        public long Count => images.shape[0];

        public (Tensor Images, Tensor Labels) GetBatch(long[] indices)
        {
            using var idx = tensor(indices);
            return (images.index_select(0, idx), labels.index_select(0, idx));
        }
    }
}
