using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Data;
using DiffusionClassifier.Modules;
using DiffusionClassifier.Scheduling;
using DiffusionClassifier.Serialization;
using DiffusionClassifier.Training;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using static TorchSharp.torch;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>train</c>: trains a class-conditional DDPM on MNIST-format data with checkpoints; resumable, and Ctrl+C writes a
/// checkpoint before exiting.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(CliContext context)
    {
        var options = new TrainCommandOptions();
        var command = new Command("train",
            "Train a class-conditional diffusion model (ConditionalUNet + DDPM, T = 400) on MNIST-format data with a progress bar, checkpoints and resume.");
        foreach (var option in options.All)
            command.Options.Add(option);
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(Run(context, options.Bind(parseResult), cancellationToken)));
        return command;
    }

    internal sealed record TrainCommandSettings(DirectoryInfo Data, int Features, TrainingOptions Options, FileInfo Output, FileInfo? Checkpoint, bool Resume,
        string[] ExplicitOnResume, bool EpochsGiven, int? Limit, bool IncludeValidation, int Validate, FileInfo? Curve, FileInfo? Init = null,
        bool FeaturesGiven = false, int Offset = 0);

    private static int Run(CliContext context, TrainCommandSettings s, CancellationToken cancellationToken)
    {
        string checkpoint = s.Checkpoint?.FullName ?? Path.ChangeExtension(s.Output.FullName, null) + ".checkpoint.safetensors";
        CheckResumeAgainstCheckpoint(s, checkpoint);

        using var dataset = MnistDataset.Load(s.Data.FullName, s.IncludeValidation ? MnistSplit.Train : MnistSplit.TrainWithoutValidation,
            new MnistDatasetOptions { Limit = s.Limit, Offset = s.Offset });
        var trainingData = new TensorTrainingData(dataset.Images, dataset.Labels);
        // The command reports progress, cancellation and the result itself: the trainer's own log only with --verbose.
        var logger = context.Verbose ? context.LoggerFactory.CreateLogger<DiffusionTrainer>() : null;

        var (trainer, model) = s.Resume ? (ResumeTrainer(s, checkpoint, logger), null) : CreateTrainer(s, checkpoint, dataset, logger);
        using var _ = model;
        using var __ = trainer;
        WriteStart(context, s, trainer, dataset);

        using var curve = s.Validate > 0 ? ValidationCurve.Open(context, s, trainer) : null;
        TrainingResult result;
        TrainingProgress? last;
        try
        {
            (result, last) = TrainWithProgress(context, trainer, trainingData, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            CliApp.WriteError(context, string.Create(CultureInfo.InvariantCulture,
                $"interrupted at epoch {trainer.CompletedEpochs + 1}, step {trainer.CompletedSteps}: checkpoint saved to {checkpoint}; run the same command with --resume to continue."));
            return ExitCodes.Interrupted;
        }

        SaveAndReport(context, s, trainer, checkpoint, result, last);
        return ExitCodes.Success;
    }

    /// <summary>Refuses --resume without a checkpoint or with the run's fixed settings, and a new run over an existing checkpoint.</summary>
    private static void CheckResumeAgainstCheckpoint(TrainCommandSettings s, string checkpoint)
    {
        if (s.Resume && s.ExplicitOnResume.Length > 0)
            throw new CliException($"{string.Join(", ", s.ExplicitOnResume)} cannot be changed when resuming: the checkpoint's settings are used (remove the option, or start a new run without --resume).");
        if (s.Init is not null && s.FeaturesGiven)
            throw new CliException("--features and --init cannot be combined: the size comes from the --init model.");
        if (s.Init is not null && !s.Init.Exists)
            throw new FileNotFoundException($"--init model '{s.Init.FullName}' does not exist.", s.Init.FullName);
        if (s.Resume && !File.Exists(checkpoint))
            throw new FileNotFoundException($"Nothing to resume: checkpoint '{checkpoint}' does not exist.", checkpoint);
        if (!s.Resume && File.Exists(checkpoint))
            throw new CliException($"Checkpoint '{checkpoint}' already exists: continue that run with --resume, or delete it (or pass another --checkpoint) to start over.");
    }

    /// <summary>The trainer of the run saved in <paramref name="checkpoint"/>, with the settings the command line may change.</summary>
    private static DiffusionTrainer ResumeTrainer(TrainCommandSettings s, string checkpoint, ILogger<DiffusionTrainer>? logger)
    {
        // Read once: its options are the base, and the trainer is built from the same snapshot.
        using var saved = TrainingCheckpoint.Load(checkpoint);
        // --threads on the command line wins over the thread count the checkpoint recorded.
        var stored = saved.Options with
        {
            CheckpointPath = checkpoint,
            CheckpointEverySteps = s.Options.CheckpointEverySteps,
            CheckpointInterval = s.Options.CheckpointInterval,
            Epochs = s.EpochsGiven ? s.Options.Epochs : saved.Options.Epochs,
            Device = s.Options.Device,
            NumThreads = s.Options.NumThreads ?? saved.Options.NumThreads,
        };
        return DiffusionTrainer.Resume(saved, stored, logger);
    }

    /// <summary>A new trainer on a freshly initialised model sized for <paramref name="dataset"/>; the caller disposes both.</summary>
    private static (DiffusionTrainer Trainer, ConditionalUNet? Model) CreateTrainer(TrainCommandSettings s, string checkpoint, MnistDataset dataset,
        ILogger<DiffusionTrainer>? logger)
    {
        var options = s.Options with { CheckpointPath = checkpoint };
        options.Validate();
        if (s.Init is not null)
            return CreateFromModel(s.Init.FullName, options, dataset, logger);
        var config = ConditionalUNetConfig.Mnist(s.Features) with { Height = dataset.Height, Width = dataset.Width, Classes = dataset.Classes };
        config.Validate();
        // The trainer does not draw the initial weights: seed libtorch's global generator for them.
        manual_seed(options.Seed);
        var model = new ConditionalUNet(config);
        return (new DiffusionTrainer(model, new DdpmScheduler(), options, logger), model);
    }

    /// <summary>A new trainer (fresh optimizer) on the weights and schedule of the model file <paramref name="path"/>.</summary>
    private static (DiffusionTrainer Trainer, ConditionalUNet? Model) CreateFromModel(string path, TrainingOptions options, MnistDataset dataset,
        ILogger<DiffusionTrainer>? logger)
    {
        using var loaded = ModelFile.Load(path);
        var c = loaded.Model.Config;
        if (c.Height != dataset.Height || c.Width != dataset.Width || c.Classes != dataset.Classes || c.InChannels != 1)
            throw new CliException(string.Create(CultureInfo.InvariantCulture,
                $"--init model '{path}' takes {c.InChannels}x{c.Height}x{c.Width} images of {c.Classes} classes; the data has 1x{dataset.Height}x{dataset.Width} images of {dataset.Classes} classes."));
        var model = loaded.DetachModel();
        try
        {
            return (new DiffusionTrainer(model, loaded.Scheduler, options, logger), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Prints what is trained and, on --resume, where the run continues.</summary>
    private static void WriteStart(CliContext context, TrainCommandSettings s, DiffusionTrainer trainer, MnistDataset dataset)
    {
        var o = trainer.Options;
        var c = trainer.Model.Config;
        context.Out.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Training F = {c.Features} on {dataset.Count} items ({dataset.Source}): {o.Epochs} epoch(s), batch {o.BatchSize}, lr {o.LearningRate:G4} ({o.LearningRateSchedule}{(o.WarmupSteps > 0 ? $", warm-up {o.WarmupSteps} steps" : "")}), EMA {o.EmaDecay:G4}, seed {o.Seed}{(o.MinSnrGamma is { } g ? $", min-SNR gamma {g:G4}" : "")}{(o.DiscriminativeWeight > 0 ? $", discriminative weight {o.DiscriminativeWeight:G4} scale {o.DiscriminativeScale:G4}{(o.DiscriminativeSamples > 1 ? $" over {o.DiscriminativeSamples} samples per image" : "")}" : "")}{(s.Init is null ? "" : $", from {s.Init.Name}")}{(s.Resume ? $", resuming at epoch {trainer.CompletedEpochs + 1}, step {trainer.CompletedSteps}" : "")}.")));
    }

    /// <summary>Trains with a progress bar; returns the result and the last progress report (null when there was none).</summary>
    private static (TrainingResult Result, TrainingProgress? Last) TrainWithProgress(CliContext context, DiffusionTrainer trainer,
        ITrainingData trainingData, CancellationToken cancellationToken)
    {
        TrainingResult? result = null;
        TrainingProgress? last = null;
        ConsoleProgress.Run(context.Out, progressContext =>
            {
                var task = progressContext.AddTask("Training", maxValue: 1);
                result = trainer.Train(trainingData, new InlineProgress<TrainingProgress>(p =>
                {
                    last = p;
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} (epoch mean {p.EpochMeanLoss:F4}) {p.ImagesPerSecond:F0} img/s ETA {p.EstimatedRemaining:hh\\:mm\\:ss}");
                    task.MaxValue = p.TotalSteps;
                    task.Value = p.Step;
                }), cancellationToken);
            }, showRemaining: false);
        return (result!, last);
    }

    /// <summary>Writes the model (the EMA weights when there are some) and reports the run.</summary>
    private static void SaveAndReport(CliContext context, TrainCommandSettings s, DiffusionTrainer trainer, string checkpoint, TrainingResult result,
        TrainingProgress? last)
    {
        trainer.SaveModel(s.Output.FullName, useEma: trainer.HasEma);
        string lossText = result.EpochMeanLosses.Count > 0 ? I($", last epoch mean loss {result.EpochMeanLosses[^1]:F5}")
            : last is null ? "" : I($", last loss {last.Loss:F5}");
        context.Out.MarkupLine(Markup.Escape(I(
            $"Trained {result.StepsRun} step(s) in {result.Elapsed.TotalSeconds:F1} s ({result.ImagesPerSecond:F0} images/s, {get_num_threads()} thread(s)); {result.EpochsCompleted}/{trainer.Options.Epochs} epochs done{lossText}.")));
        context.Out.MarkupLine(Markup.Escape($"Wrote {s.Output.FullName} ({(trainer.HasEma ? "EMA" : "raw")} weights); checkpoint {checkpoint}."));
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
