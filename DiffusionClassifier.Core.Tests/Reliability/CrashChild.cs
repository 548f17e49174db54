using System.Globalization;
using DiffusionClassifier.IO;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Tests.TestSupport;
using DiffusionClassifier.Tests.Training;
using DiffusionClassifier.Training;
using static TorchSharp.torch;

namespace DiffusionClassifier.Tests.Reliability;

/// <summary>
/// The child process of <see cref="CrashSafetyTests"/>: trains a tiny model with a checkpoint after every step,
/// resuming from the checkpoint when it exists, and reports on stdout, one line each:
/// <c>READY step</c> (after loading), <c>STEP n loss</c> (after optimizer step n, loss in round-trip format),
/// <c>SAVED n</c> (the checkpoint of step n was renamed into place) and <c>PAUSED phase k temp</c> (stopped inside
/// the k-th checkpoint write of this process at that phase of <see cref="AtomicFile"/>, waiting to be killed).
/// It never exits by itself: the parent kills it.
/// </summary>
internal static class CrashChild
{
    public const string Verb = "crash-child";

    /// <summary>The verb that runs the command-line tool (<c>cli-crash mode tool-arguments...</c>) with the same hook.</summary>
    public const string CliVerb = "cli-crash";

    /// <summary>Images in the child's training set and images per step (4 steps per epoch).</summary>
    public const int Items = 16, BatchSize = 4;

    /// <summary>The options of the child's run (the parent resumes with the same ones).</summary>
    public static TrainingOptions Options(string checkpoint) => new()
    {
        Epochs = 1_000_000, BatchSize = BatchSize, LearningRate = 1e-3, Seed = 77, EmaDecay = 0.9, NumThreads = 1,
        CheckpointPath = checkpoint, CheckpointEverySteps = 1, CheckpointInterval = TimeSpan.Zero,
    };

    /// <summary>The child's training data (the caller disposes the tensors).</summary>
    public static (Tensor Images, Tensor Labels) Data() => SyntheticDigits.Create(Items, side: 8, seed: 9);

    /// <summary>Runs the child: args are the checkpoint path and the mode.</summary>
    public static int Run(string[] args)
    {
        string checkpoint = args[0];
        string mode = args[1];
        set_num_threads(1);
        var output = Console.Out;
        long step = 0;
        int writes = 0;
        if (mode.StartsWith("pause:", StringComparison.Ordinal))
        {
            var parts = mode.Split(':');
            string phase = parts[1];
            int at = int.Parse(parts[2], CultureInfo.InvariantCulture);
            AtomicFile.PhaseHook = (p, temp) =>
            {
                if (p == "written") writes++;
                if (p == "renamed") Say($"SAVED {step}");
                if (p == phase && writes == at)
                {
                    Say($"PAUSED {p} {writes} {temp}");
                    Thread.Sleep(Timeout.Infinite);
                }
            };
        }
        else
        {
            AtomicFile.PhaseHook = (p, _) => { if (p == "renamed") Say($"SAVED {step}"); };
        }

        var (images, labels) = Data();
        var options = Options(checkpoint);
        using var trainer = File.Exists(checkpoint)
            ? DiffusionTrainer.FromCheckpoint(checkpoint, options)
            : new DiffusionTrainer(TinyModelsForChild(), new DdpmScheduler(), options);
        step = trainer.CompletedSteps;
        Say($"READY {step}");
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            step = p.Step;
            Say(string.Create(CultureInfo.InvariantCulture, $"STEP {p.Step} {p.Loss:R}"));
        });
        trainer.Train(new TensorTrainingData(images, labels), progress);
        return 0;

        void Say(string line)
        {
            lock (output)
            {
                output.WriteLine(line);
                output.Flush();
            }
        }
    }

    /// <summary>
    /// Runs the command-line tool in this process with the checkpoint-write hook of <paramref name="mode"/>: prints
    /// <c>SAVED</c> after every rename and <c>PAUSED phase k temp</c> when it stops (the tool's own output is
    /// interleaved).
    /// </summary>
    public static int RunCli(string mode, string[] toolArguments)
    {
        set_num_threads(1);
        var output = Console.Out;
        int writes = 0;
        string? phase = null;
        int at = 0;
        if (mode.StartsWith("pause:", StringComparison.Ordinal))
        {
            var parts = mode.Split(':');
            phase = parts[1];
            at = int.Parse(parts[2], CultureInfo.InvariantCulture);
        }
        AtomicFile.PhaseHook = (p, temp) =>
        {
            if (p == "written") writes++;
            if (p == "renamed") Say("SAVED");
            if (p == phase && writes == at)
            {
                Say($"PAUSED {p} {writes} {temp}");
                Thread.Sleep(Timeout.Infinite);
            }
        };
        var context = DiffusionClassifier.Cli.Infrastructure.CliContext.ForWriters(new LockedWriter(output), Console.Error);
        return DiffusionClassifier.Cli.CliApp.RunAsync(toolArguments, context, CancellationToken.None).GetAwaiter().GetResult();

        void Say(string line)
        {
            lock (output)
            {
                output.WriteLine();
                output.WriteLine(line);
                output.Flush();
            }
        }
    }

    /// <summary>Serialises the tool's writes with the hook's lines and flushes them at once.</summary>
    private sealed class LockedWriter(TextWriter inner) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            lock (inner) { inner.Write(value); inner.Flush(); }
        }

        public override void Write(string? value)
        {
            lock (inner) { inner.Write(value); inner.Flush(); }
        }
    }

    /// <summary>The child's fresh model: seeded, so every fresh start is the same run.</summary>
    public static DiffusionClassifier.Modules.ConditionalUNet TinyModelsForChild() => TestSupport.TinyModels.Create(seed: 4242);
}
