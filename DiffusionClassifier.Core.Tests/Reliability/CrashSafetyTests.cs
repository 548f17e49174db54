using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.IO;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Tests.Training;
using DiffusionClassifier.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// Crash safety for real: a child process (this test assembly run as a program, see <see cref="CrashChild"/>) trains
/// with a checkpoint after every step and is killed with SIGKILL inside a checkpoint write (after the content was
/// handed to the stream, after the flush, after the rename: stopped there through the <see cref="AtomicFile"/> test
/// seam) and at random moments. After every kill the last checkpoint must load as a model file and as a trainer, the
/// resumed run must repeat the losses the child had computed for the same steps (the trajectory continues exactly),
/// and the temporary files the dead child left must not disturb anything and be cleaned up by the next write.
/// The kills form one chain: every child resumes from the checkpoint the previous one (and the parent's resumed
/// steps) left. <c>DC_CRASH_RANDOM_KILLS</c> sets the number of random kills (default 2).
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CrashSafetyTests(ITestOutputHelper output) : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("dc-crash-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static int RandomKills =>
        int.TryParse(Environment.GetEnvironmentVariable("DC_CRASH_RANDOM_KILLS"), out int n) && n >= 0 ? n : 2;

    [Fact]
    public void KillsInsideAndBetweenCheckpointWritesLeaveALoadableCheckpointAndTheRunContinues()
    {
        using var threads = new SingleThreadedTorch();
        string checkpoint = Path.Combine(folder, "run.ckpt");
        var clock = Stopwatch.StartNew();

        // A first child trains a few steps from scratch and is killed right after a rename.
        Kill(checkpoint, "pause:renamed:3", expectTemp: false);
        // Inside a write: content handed to the (buffered) stream, not flushed; then flushed but not renamed.
        Kill(checkpoint, "pause:written:2", expectTemp: true);
        Kill(checkpoint, "pause:flushed:2", expectTemp: true);
        // Just after the rename of the first write of a resumed run.
        Kill(checkpoint, "pause:renamed:1", expectTemp: false);
        // At random moments while it trains and checkpoints (a checkpoint write takes most of each step).
        var random = new Random(20261130);
        int midWrite = 0;
        for (int i = 0; i < RandomKills; i++)
            midWrite += Kill(checkpoint, "spin", expectTemp: null, killDelay: TimeSpan.FromMilliseconds(random.Next(0, 400))) ? 1 : 0;
        output.WriteLine($"{4 + RandomKills} kills in {clock.Elapsed.TotalSeconds:F1} s; {midWrite} of {RandomKills} random kills left a temporary file (mid-write).");
    }

    [Fact]
    public void AKillDuringTheVeryFirstCheckpointWriteLeavesNoCheckpointAndAFreshStartWorks()
    {
        using var threads = new SingleThreadedTorch();
        string checkpoint = Path.Combine(folder, "first.ckpt");
        using var child = ChildProcess.Start(CrashChild.Verb, checkpoint, "pause:written:1");
        child.WaitFor(l => l.StartsWith("PAUSED ", StringComparison.Ordinal));
        child.Kill();
        Assert.False(File.Exists(checkpoint));
        var stale = Temporaries(checkpoint);
        Assert.Single(stale);
        Assert.Throws<FileNotFoundException>(() => DiffusionTrainer.FromCheckpoint(checkpoint, CrashChild.Options(checkpoint)));

        // A fresh run writing the same checkpoint is not disturbed by the leftover and removes it.
        var (images, labels) = CrashChild.Data();
        using (images)
        using (labels)
        using (var model = CrashChild.TinyModelsForChild())
        using (var trainer = new DiffusionTrainer(model, new DiffusionClassifier.Scheduling.DdpmScheduler(), CrashChild.Options(checkpoint)))
        {
            var losses = RunSteps(trainer, new TensorTrainingData(images, labels), 2);
            // The child computed the same first step before it was killed.
            Assert.Equal(child.Losses[1], losses[1], 1e-6 * Math.Abs(child.Losses[1]));
        }
        Assert.Empty(Temporaries(checkpoint));
        using var loaded = ModelFile.Load(checkpoint);
        Assert.Equal("2", System.Text.Json.JsonDocument.Parse(loaded.Metadata["training_state"]).RootElement.GetProperty("global_step").ToString());
    }

    /// <summary>
    /// Starts a child in <paramref name="mode"/>, kills it (when it pauses, or after <paramref name="killDelay"/> past
    /// its first checkpoint in spin mode), checks the checkpoint and resumes three steps in this process.
    /// Returns whether the child left a temporary file (it was killed inside a write).
    /// </summary>
    private bool Kill(string checkpoint, string mode, bool? expectTemp, TimeSpan? killDelay = null)
    {
        long before = File.Exists(checkpoint) ? StepOf(checkpoint) : -1;
        using var child = ChildProcess.Start(CrashChild.Verb, checkpoint, mode);
        if (mode == "spin")
        {
            child.WaitFor(l => l.StartsWith("SAVED ", StringComparison.Ordinal));
            Thread.Sleep(killDelay!.Value);
        }
        else
        {
            child.WaitFor(l => l.StartsWith("PAUSED ", StringComparison.Ordinal));
        }
        child.Kill();

        var stale = Temporaries(checkpoint);
        var staleBytes = stale.Select(f => new FileInfo(f).Length).ToArray();
        long completeBytes = new FileInfo(checkpoint).Length;
        if (expectTemp is bool expected)
            Assert.Equal(expected ? 1 : 0, stale.Length);
        long saved = child.LastSaved ?? before;
        long stepped = child.Losses.Count == 0 ? before : child.Losses.Keys.Max();

        // The checkpoint is complete: it loads as a model file with finite weights...
        using (var loaded = ModelFile.Load(checkpoint))
        {
            foreach (var (key, value) in loaded.Model.state_dict())
                if (value.is_floating_point())
                    Assert.True(isfinite(value).all().item<bool>(), $"{mode}: '{key}' is not finite");
        }
        // ...and as a trainer positioned at the last completed rename.
        var (images, labels) = CrashChild.Data();
        using var imagesScope = images;
        using var labelsScope = labels;
        using var trainer = DiffusionTrainer.FromCheckpoint(checkpoint, CrashChild.Options(checkpoint));
        long at = trainer.CompletedSteps;
        if (mode == "spin")
            Assert.InRange(at, saved, stepped);
        else
            Assert.Equal(saved, at);

        // Resuming continues the very same run: the losses of the steps the child had already computed repeat.
        var resumed = RunSteps(trainer, new TensorTrainingData(images, labels), 3);
        int compared = 0;
        foreach (var (step, loss) in resumed)
        {
            if (child.Losses.TryGetValue(step, out float expectedLoss))
            {
                Assert.True(Math.Abs(expectedLoss - loss) <= 1e-6 * Math.Abs(expectedLoss), $"{mode}: step {step} loss {loss:R}, the child had {expectedLoss:R}");
                compared++;
            }
        }
        // The resumed run's first checkpoint write removed the dead child's temporary file.
        Assert.Empty(Temporaries(checkpoint));
        output.WriteLine($"{mode}: killed after child step {stepped} (last rename reported: {saved}); checkpoint at step {at}; " +
            $"{stale.Length} stale temporary file(s){(stale.Length > 0 ? $" of {staleBytes[0]} bytes (complete checkpoint: {completeBytes})" : "")}; " +
            $"resumed to step {trainer.CompletedSteps}, {compared} loss(es) compared with the child's.");
        return stale.Length > 0;
    }

    /// <summary>Trains <paramref name="steps"/> more steps (then cancels, which writes a checkpoint); returns the losses by global step.</summary>
    private static Dictionary<long, float> RunSteps(DiffusionTrainer trainer, ITrainingData data, int steps)
    {
        long target = trainer.CompletedSteps + steps;
        var losses = new Dictionary<long, float>();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            losses[p.Step] = p.Loss;
            if (p.Step >= target) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Train(data, progress, cts.Token));
        Assert.Equal(target, trainer.CompletedSteps);
        return losses;
    }

    private static long StepOf(string checkpoint)
    {
        using var loaded = ModelFile.Load(checkpoint);
        return System.Text.Json.JsonDocument.Parse(loaded.Metadata["training_state"]).RootElement.GetProperty("global_step").GetInt64();
    }

    private static string[] Temporaries(string checkpoint) =>
        Directory.GetFiles(Path.GetDirectoryName(checkpoint)!, $".{Path.GetFileName(checkpoint)}.*.tmp");
}
