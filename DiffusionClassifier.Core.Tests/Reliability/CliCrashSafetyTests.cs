using System.Text.Json;
using System.Text.RegularExpressions;
using DiffusionClassifier.IO;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.Cli;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Training;
using Xunit.Abstractions;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// The crash test through the command-line tool: <c>train</c> runs in a child process (the tool's own code, started
/// by this assembly's <c>cli-crash</c> verb with the <see cref="AtomicFile"/> hook) with a checkpoint after every
/// step and is killed with SIGKILL inside a checkpoint write and at a random moment of a resumed run; after each kill
/// the checkpoint loads, and finally <c>train --resume</c> (in this process) finishes the run from it.
/// </summary>
[Collection(SingleThreadedTorchCollection.Name)]
public sealed class CliCrashSafetyTests(CliFixture fixture, ITestOutputHelper log) : IClassFixture<CliFixture>, IDisposable
{
    private readonly SingleThreadedTorch threads = new();

    public void Dispose() => threads.Dispose();

    [Fact]
    public void KilledTrainingResumesWithTrainResume()
    {
        string output = fixture.NewPath("killed.safetensors"), checkpoint = fixture.NewPath("killed.ckpt");
        string[] triggers = ["--output", output, "--checkpoint", checkpoint, "--checkpoint-every", "1", "--checkpoint-minutes", "0"];

        // 1. A fresh run, killed after the content of its third checkpoint went to the stream (not flushed, not renamed).
        using (var child = ChildProcess.Start([CrashChild.CliVerb, "pause:written:3", "train", "--data", fixture.DataFolder, "--features", "8",
                   "--epochs", "1000", "--batch-size", "4", "--lr", "0.001", "--seed", "5", .. triggers]))
        {
            child.WaitFor(l => l.StartsWith("PAUSED ", StringComparison.Ordinal));
            child.Kill();
            Assert.Equal(2, child.SavedCount);
        }
        Assert.Single(Temporaries(checkpoint));
        Assert.Equal(2, Verify(checkpoint, "after a kill inside the third write"));

        // 2. Resumed with --resume, killed at a random moment after its first checkpoint.
        long before = StepOf(checkpoint);
        int resumedSaves;
        using (var child = ChildProcess.Start([CrashChild.CliVerb, "spin", "train", "--data", fixture.DataFolder, "--epochs", "1000", .. triggers, "--resume"]))
        {
            child.WaitFor(l => l == "SAVED");
            // The tool's output may wrap long lines.
            Assert.Matches(new Regex($@"resuming\s+at\s+epoch\s+\d+,\s+step\s+{before}\b"), string.Join(" ", child.Lines));
            Thread.Sleep(new Random(7).Next(0, 300));
            child.Kill();
            resumedSaves = child.SavedCount;
        }
        long at = Verify(checkpoint, "after a random kill of the resumed run");
        Assert.InRange(at, before + resumedSaves, before + resumedSaves + 1);

        // 3. train --resume finishes the run from the checkpoint, undisturbed by the leftovers, and removes them.
        long epochs = JsonDocument.Parse(ReadMetadata(checkpoint)).RootElement.GetProperty("epoch").GetInt64() + 1;
        var run = CliRunner.Run(["train", "--data", fixture.DataFolder, "--epochs", $"{epochs}", .. triggers, "--resume"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Matches(new Regex($@"resuming\s+at\s+epoch\s+{epochs},\s+step\s+{at}\b"), run.Out);
        Assert.Empty(Temporaries(checkpoint));
        Assert.Equal(epochs * 4, StepOf(checkpoint));
        using (var model = ModelFile.Load(output))
            Assert.Equal(8, model.Model.Config.Features);
        log.WriteLine($"CLI: killed inside write 3 (checkpoint at step 2), resumed from step {before} and killed after {resumedSaves} rename(s) " +
            $"(checkpoint at step {at}), then train --resume finished epoch {epochs} at step {epochs * 4}.");
    }

    /// <summary>Checks that the checkpoint loads as a model file and as a trainer; returns its step.</summary>
    private static long Verify(string checkpoint, string when)
    {
        using (var loaded = ModelFile.Load(checkpoint))
            Assert.True(loaded.Model.parameters().All(p => TorchSharp.torch.isfinite(p).all().item<bool>()), $"{when}: non-finite weights");
        using var trainer = DiffusionTrainer.FromCheckpoint(checkpoint);
        return trainer.CompletedSteps;
    }

    private static long StepOf(string checkpoint) =>
        JsonDocument.Parse(ReadMetadata(checkpoint)).RootElement.GetProperty("global_step").GetInt64();

    private static string ReadMetadata(string checkpoint)
    {
        using var loaded = ModelFile.Load(checkpoint);
        return loaded.Metadata["training_state"];
    }

    private static string[] Temporaries(string checkpoint) =>
        Directory.GetFiles(Path.GetDirectoryName(checkpoint)!, $".{Path.GetFileName(checkpoint)}.*.tmp");
}
