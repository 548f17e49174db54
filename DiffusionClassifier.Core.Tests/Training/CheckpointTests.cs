using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Training;

public sealed class CheckpointTests : IDisposable
{
    private const int Epochs = 3, Batch = 16, Items = 64, StepsPerEpoch = Items / Batch, TotalSteps = Epochs * StepsPerEpoch;
    private readonly string folder = Path.Combine(Path.GetTempPath(), $"ckpt-{Guid.NewGuid():N}");
    private readonly Tensor images, labels;
    private readonly TrainerModels models = new();

    public CheckpointTests()
    {
        Directory.CreateDirectory(folder);
        (images, labels) = SyntheticDigits.Random(Items);
    }

    public void Dispose()
    {
        models.Dispose();
        images.Dispose();
        labels.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    private string PathOf(string name) => Path.Combine(folder, name);

    private TrainingOptions Options(string? checkpoint = null) => new()
    {
        Epochs = Epochs, BatchSize = Batch, LearningRate = 1e-3, Seed = 21, EmaDecay = 0.9, NumThreads = 1,
        CheckpointPath = checkpoint, CheckpointInterval = TimeSpan.Zero,
    };

    private ITrainingData Data => new TensorTrainingData(images, labels);

    /// <summary>The uninterrupted run: per-step losses, final weights and final EMA export.</summary>
    private (IReadOnlyList<float> Losses, Dictionary<string, Tensor> Weights, Dictionary<string, Tensor> Ema) Reference()
    {
        using var model = models.Create();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options());
        var result = trainer.Train(Data);
        string emaPath = PathOf("reference-ema.safetensors");
        trainer.SaveModel(emaPath, useEma: true);
        using var ema = ModelFile.Load(emaPath);
        return (result.StepLosses, Snapshot(model), Snapshot(ema.Model));
    }

    private static Dictionary<string, Tensor> Snapshot(ConditionalUNet model) =>
        model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());

    private static void AssertClose(Dictionary<string, Tensor> expected, ConditionalUNet actual, string what)
    {
        foreach (var (key, value) in actual.state_dict())
        {
            double err = (value.to(ScalarType.Float64) - expected[key].to(ScalarType.Float64)).abs().max().item<double>();
            Assert.True(err <= 1e-6, $"{what}: '{key}' differs by {err}");
        }
    }

    private static void AssertLossesClose(IEnumerable<float> expected, IEnumerable<float> actual)
    {
        var e = expected.ToArray();
        var a = actual.ToArray();
        Assert.Equal(e.Length, a.Length);
        for (int i = 0; i < e.Length; i++)
            Assert.True(Math.Abs(e[i] - a[i]) <= 1e-6, $"step {i}: expected loss {e[i]:R}, got {a[i]:R}");
    }

    /// <summary>Runs with a checkpoint path and cancels after <paramref name="stopAfter"/> steps.</summary>
    private IReadOnlyList<float> RunAndCancel(string checkpoint, int stopAfter)
    {
        using var cts = new CancellationTokenSource();
        var losses = new List<float>();
        using var model = models.Create();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options(checkpoint));
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            losses.Add(p.Loss);
            if (p.Step == stopAfter) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Train(Data, progress, cts.Token));
        Assert.Equal(stopAfter, trainer.CompletedSteps);
        return losses;
    }

    [Theory]
    [InlineData(1)] // in the first epoch
    [InlineData(4)] // exactly at an epoch boundary (the next epoch's order already drawn)
    [InlineData(6)] // in the middle of the second epoch
    public void ResumedRunContinuesTheUninterruptedTrajectory(int stopAfter)
    {
        var reference = Reference();
        string checkpoint = PathOf($"stop{stopAfter}.safetensors");
        var before = RunAndCancel(checkpoint, stopAfter);
        AssertLossesClose(reference.Losses.Take(stopAfter), before);

        // A fresh process would rebuild the model: different initial weights prove that the checkpoint's are used.
        using var model = TinyModels.Create(seed: 999);
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options(checkpoint));
        trainer.LoadCheckpoint(checkpoint);
        Assert.Equal(stopAfter, trainer.CompletedSteps);
        Assert.Equal(stopAfter / StepsPerEpoch, trainer.CompletedEpochs);
        var reports = new List<TrainingProgress>();
        var result = trainer.Train(Data, new SyncProgress<TrainingProgress>(reports.Add));
        Assert.Equal(TotalSteps - stopAfter, result.StepsRun);
        Assert.Equal(stopAfter + 1, reports[0].Step);
        AssertLossesClose(reference.Losses.Skip(stopAfter), result.StepLosses);
        AssertClose(reference.Weights, model, "final weights");
        string emaPath = PathOf("resumed-ema.safetensors");
        trainer.SaveModel(emaPath, useEma: true);
        using var ema = ModelFile.Load(emaPath);
        AssertClose(reference.Ema, ema.Model, "final EMA");
        foreach (var t in reference.Weights.Values.Concat(reference.Ema.Values)) t.Dispose();
    }

    [Fact]
    public void PeriodicCheckpointResumedWithFromCheckpointContinuesTheTrajectory()
    {
        var reference = Reference();
        string checkpoint = PathOf("periodic.safetensors");
        // Every 5 steps plus every epoch end: after 12 steps the last periodic one is at step 10; copy that one.
        var options = Options(checkpoint);
        options = options with { CheckpointEverySteps = 5 };
        string atStep10 = PathOf("at10.safetensors");
        var written = new List<long>();
        using (var model = models.Create())
        using (var trainer = new DiffusionTrainer(model, new DdpmScheduler(), options))
        {
            trainer.Train(Data, new SyncProgress<TrainingProgress>(p =>
            {
                // The checkpoint for step s is written after the report of step s: copy at the next report.
                if (p.Step == 11) File.Copy(checkpoint, atStep10);
            }));
        }
        using var resumed = DiffusionTrainer.FromCheckpoint(atStep10);
        Assert.Equal(10, resumed.CompletedSteps);
        Assert.Equal(checkpoint, resumed.Options.CheckpointPath); // the stored options are used
        var result = resumed.Train(Data);
        AssertLossesClose(reference.Losses.Skip(10), result.StepLosses);
        AssertClose(reference.Weights, resumed.Model, "final weights");
        foreach (var t in reference.Weights.Values.Concat(reference.Ema.Values)) t.Dispose();
    }

    [Fact]
    public void CancellationLeavesALoadableModelFileAndNoTemporaryFiles()
    {
        string checkpoint = PathOf("cancel.safetensors");
        RunAndCancel(checkpoint, 2);
        Assert.Equal(new[] { "cancel.safetensors" }, Directory.GetFiles(folder).Select(Path.GetFileName));
        using var loaded = ModelFile.Load(checkpoint);
        Assert.Equal(TinyModels.Config(), loaded.Model.Config);
        Assert.Contains(loaded.ExtraTensors.Keys, k => k.StartsWith("optimizer.exp_avg.", StringComparison.Ordinal));
        Assert.Contains(loaded.ExtraTensors.Keys, k => k.StartsWith("ema.", StringComparison.Ordinal));
        Assert.Contains("trainer.rng_state", loaded.ExtraTensors.Keys);
        Assert.Contains("trainer.permutation", loaded.ExtraTensors.Keys);
        // It runs as a model.
        using (no_grad())
        using (var y = loaded.Model.forward(images, labels, full(Items, 0.5f)))
            Assert.False(y.isnan().any().item<bool>());
        // And a trainer built from it finishes the run.
        using var trainer = DiffusionTrainer.FromCheckpoint(checkpoint);
        Assert.Equal(TotalSteps - 2, trainer.Train(Data).StepsRun);
        Assert.Equal(Epochs, trainer.CompletedEpochs);
        // A finished run has nothing left to do.
        Assert.Equal(0, trainer.Train(Data).StepsRun);
    }

    [Fact]
    public void CancellationBeforeTheFirstStepStillWritesACheckpoint()
    {
        string checkpoint = PathOf("early.safetensors");
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using (var model = models.Create())
        using (var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options(checkpoint)))
            Assert.ThrowsAny<OperationCanceledException>(() => trainer.Train(Data, null, cts.Token));
        using var resumed = DiffusionTrainer.FromCheckpoint(checkpoint);
        Assert.Equal(0, resumed.CompletedSteps);
    }

    [Fact]
    public void ResumingWithOtherDataCountIsRefused()
    {
        string checkpoint = PathOf("count.safetensors");
        RunAndCancel(checkpoint, 2);
        using var trainer = DiffusionTrainer.FromCheckpoint(checkpoint);
        using var fewer = images.narrow(0, 0, Items - 1);
        using var fewerLabels = labels.narrow(0, 0, Items - 1);
        var ex = Assert.Throws<ArgumentException>(() => trainer.Train(new TensorTrainingData(fewer, fewerLabels)));
        Assert.Equal("data", ex.ParamName);
        Assert.Contains($"{Items - 1}", ex.Message);
        Assert.Contains($"{Items}", ex.Message);
    }

    [Fact]
    public void ResumingWithOtherItemsOfTheSameCountIsRefusedAndLosesNothing()
    {
        string checkpoint = PathOf("items.safetensors");
        RunAndCancel(checkpoint, 2);
        var before = File.ReadAllBytes(checkpoint);
        using var trainer = DiffusionTrainer.FromCheckpoint(checkpoint);

        // The same count, the items shifted by one: what a resume with another --offset would give.
        using var shifted = images.roll(1, 0);
        using var shiftedLabels = labels.roll(1, 0);
        var ex = Assert.Throws<ArgumentException>(() => trainer.Train(new TensorTrainingData(shifted, shiftedLabels)));
        Assert.Equal("data", ex.ParamName);
        Assert.Contains($"{Items} items", ex.Message);
        Assert.Contains("fingerprint", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(checkpoint));
        Assert.Equal(2, trainer.CompletedSteps);

        // The trainer is unharmed: the right items continue the run.
        var result = trainer.Train(Data);
        Assert.Equal(TotalSteps - 2, result.StepLosses.Count);
    }

    [Fact]
    public void CheckpointWithoutAFingerprintStillResumesOnItsCount()
    {
        var reference = Reference();
        string full = PathOf("with-fingerprint.safetensors");
        RunAndCancel(full, 3);
        string old = PathOf("without-fingerprint.safetensors");
        using (var content = SafeTensors.Load(full))
        {
            var metadata = content.Metadata.ToDictionary(p => p.Key, p => p.Value);
            var state = System.Text.Json.Nodes.JsonNode.Parse(metadata["training_state"])!.AsObject();
            Assert.Equal(16, state["data_fingerprint"]!.GetValue<string>().Length);
            state.Remove("data_fingerprint");
            metadata["training_state"] = state.ToJsonString();
            SafeTensors.Save(old, content.Tensors.ToDictionary(p => p.Key, p => p.Value), metadata);
        }

        using var trainer = DiffusionTrainer.FromCheckpoint(old);
        var rest = trainer.Train(Data);
        AssertLossesClose(reference.Losses.Skip(3), rest.StepLosses);
        foreach (var t in reference.Weights.Values.Concat(reference.Ema.Values)) t.Dispose();
    }

    [Fact]
    public void FingerprintDependsOnTheItemsNotOnTheirTensorsIdentity()
    {
        string a = TrainingDataFingerprint.Compute(Data);
        using (var imagesCopy = images.clone())
        using (var labelsCopy = labels.clone())
            Assert.Equal(a, TrainingDataFingerprint.Compute(new TensorTrainingData(imagesCopy, labelsCopy)));
        var changed = labels.data<long>().ToArray();
        changed[^1] = (changed[^1] + 1) % 10; // the last item is one of the probes
        using var otherLabel = tensor(changed);
        Assert.NotEqual(a, TrainingDataFingerprint.Compute(new TensorTrainingData(images, otherLabel)));
        using var fewer = images.narrow(0, 0, 1);
        using var fewerLabels = labels.narrow(0, 0, 1);
        Assert.Matches("^[0-9a-f]{16}$", TrainingDataFingerprint.Compute(new TensorTrainingData(fewer, fewerLabels)));
    }

    public static TheoryData<string, string> BadCheckpoints => new()
    {
        { "truncated", "not a valid safetensors file" },
        { "garbage", "not a valid safetensors file" },
        { "other architecture", "Features = 16" },
        { "plain model file", "not a training checkpoint" },
        { "missing optimizer tensor", "extra.optimizer.exp_avg_sq.up2.model.0.weight" },
        { "other batch size", "BatchSize 8" },
        { "other schedule", "T = 300" },
        { "missing options", "training_options" },
        { "missing EMA tensor", "extra.ema.down1.model.0.conv1.0.weight" },
        { "bad permutation", "not a permutation" },
    };

    [Theory]
    [MemberData(nameof(BadCheckpoints))]
    public void BadCheckpointIsRefusedAndNeitherTheFileNorTheTrainerChange(string kind, string expectedMessage)
    {
        string good = PathOf("good.safetensors");
        RunAndCancel(good, 5);
        string bad = PathOf("bad.safetensors");
        switch (kind)
        {
            case "truncated":
                var bytes = File.ReadAllBytes(good);
                File.WriteAllBytes(bad, bytes.AsSpan(0, bytes.Length / 2).ToArray());
                break;
            case "garbage":
                File.WriteAllBytes(bad, Enumerable.Range(0, 5000).Select(i => (byte)(i * 31)).ToArray());
                break;
            case "other architecture":
                using (var wide = TinyModels.Create(TinyModels.Config(features: 16)))
                using (var t = new DiffusionTrainer(wide, new DdpmScheduler(), Options()))
                    t.SaveCheckpoint(bad);
                break;
            case "plain model file":
                using (var plain = models.Create())
                    ModelFile.Save(bad, plain, new DdpmScheduler());
                break;
            case "other batch size":
                var o = Options();
                o = o with { BatchSize = 8 };
                using (var m = models.Create())
                using (var t = new DiffusionTrainer(m, new DdpmScheduler(), o))
                    t.SaveCheckpoint(bad);
                break;
            case "other schedule":
                using (var m = models.Create())
                using (var t = new DiffusionTrainer(m, new DdpmScheduler(300), Options()))
                    t.SaveCheckpoint(bad);
                break;
            case "missing options":
                using (var content = SafeTensors.Load(good))
                {
                    var metadata = content.Metadata.Where(p => p.Key != "training_options").ToDictionary(p => p.Key, p => p.Value);
                    SafeTensors.Save(bad, content.Tensors.ToDictionary(p => p.Key, p => p.Value), metadata);
                }
                break;
            case "missing EMA tensor":
            case "missing optimizer tensor":
            case "bad permutation":
                using (var content = SafeTensors.Load(good))
                {
                    var tensors = content.Tensors.ToDictionary(p => p.Key, p => p.Value);
                    if (kind == "bad permutation")
                        tensors["extra.trainer.permutation"] = zeros(Items, ScalarType.Int64);
                    else if (kind == "missing EMA tensor")
                        tensors.Remove("extra.ema.down1.model.0.conv1.0.weight");
                    else
                        tensors.Remove("extra.optimizer.exp_avg_sq.up2.model.0.weight");
                    SafeTensors.Save(bad, tensors, content.Metadata);
                }
                break;
        }
        var badBytes = File.ReadAllBytes(bad);

        // The trainer would write its checkpoints to that very file: a failed resume must not touch it.
        using var model = TinyModels.Create(seed: 77);
        var weightsBefore = Snapshot(model);
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options(bad));
        var ex = Assert.Throws<InvalidDataException>(() => trainer.LoadCheckpoint(bad));
        Assert.Contains(expectedMessage, ex.Message);
        Assert.Contains("bad.safetensors", ex.Message);
        Assert.Equal(badBytes, File.ReadAllBytes(bad));
        AssertClose(weightsBefore, model, "weights after a failed resume");
        Assert.Equal(0, trainer.CompletedSteps);
        foreach (var t in weightsBefore.Values) t.Dispose();

        if (kind is not ("other architecture" or "other batch size" or "other schedule"))
        {
            Assert.Throws<InvalidDataException>(() => DiffusionTrainer.FromCheckpoint(bad));
            Assert.Equal(badBytes, File.ReadAllBytes(bad));
        }
    }

    [Fact]
    public void LoadedCheckpointShowsTheRunAndResumeContinuesTheTrajectory()
    {
        var reference = Reference();
        string checkpoint = PathOf("snapshot.safetensors");
        RunAndCancel(checkpoint, 6);
        using var saved = TrainingCheckpoint.Load(checkpoint);
        Assert.Equal(checkpoint, saved.Path);
        Assert.Equal(6, saved.CompletedSteps);
        Assert.Equal(6 / StepsPerEpoch, saved.CompletedEpochs);
        Assert.True(saved.HasEma);
        Assert.Equal(TinyModels.Config(), saved.Config);
        Assert.Equal(new DdpmScheduler(), saved.Scheduler);
        var stored = saved.Options;
        Assert.Equal((21L, Batch, Epochs, checkpoint), (stored.Seed, stored.BatchSize, stored.Epochs, stored.CheckpointPath));
        stored = stored with { Seed = 5 }; // a copy: the checkpoint's options do not change
        Assert.Equal(21L, saved.Options.Seed);

        // Two trainers from one snapshot: the snapshot is not consumed, and both continue the same trajectory.
        for (int i = 0; i < 2; i++)
        {
            using var trainer = DiffusionTrainer.Resume(saved);
            Assert.Equal(6, trainer.CompletedSteps);
            var result = trainer.Train(Data);
            AssertLossesClose(reference.Losses.Skip(6), result.StepLosses);
            AssertClose(reference.Weights, trainer.Model, $"final weights of resume {i + 1}");
        }
        foreach (var t in reference.Weights.Values.Concat(reference.Ema.Values)) t.Dispose();
    }

    [Fact]
    public void ResumeRefusesOptionsThatDoNotFitTheCheckpoint()
    {
        string checkpoint = PathOf("fit.safetensors");
        RunAndCancel(checkpoint, 6);
        using var saved = TrainingCheckpoint.Load(checkpoint);
        var fewerEpochs = saved.Options;
        fewerEpochs = fewerEpochs with { Epochs = 1 };
        Assert.Contains("beyond the 1 epochs", Assert.Throws<InvalidDataException>(() => DiffusionTrainer.Resume(saved, fewerEpochs)).Message);
        var otherBatch = saved.Options;
        otherBatch = otherBatch with { BatchSize = 8 };
        Assert.Contains("BatchSize 16", Assert.Throws<InvalidDataException>(() => DiffusionTrainer.Resume(saved, otherBatch)).Message);
    }

    [Fact]
    public void MissingCheckpointGivesFileNotFound()
    {
        using var model = models.Create();
        using var trainer = new DiffusionTrainer(model, new DdpmScheduler(), Options());
        Assert.Throws<FileNotFoundException>(() => trainer.LoadCheckpoint(PathOf("absent.safetensors")));
        Assert.Throws<FileNotFoundException>(() => DiffusionTrainer.FromCheckpoint(PathOf("absent.safetensors")));
        Assert.Throws<FileNotFoundException>(() => TrainingCheckpoint.Load(PathOf("absent.safetensors")));
    }
}
