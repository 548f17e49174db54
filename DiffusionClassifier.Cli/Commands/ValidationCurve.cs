using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Data;
using DiffusionClassifier.Training;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>train --validate</c>: after every epoch, the EMA weights classify a fixed part of the validation split with the
/// default estimator (float32, so that curves from different CPUs compare, N = 20, seed 0); one CSV row per epoch.
/// </summary>
internal sealed class ValidationCurve : IDisposable
{
    /// <summary>The CSV header. <c>train_seconds</c> is the wall time of this <c>train</c> command so far (earlier rows'
    /// validations included; 0 again after a resume), as the committed curves were written.</summary>
    public const string Header = "epoch,epochs,mean_loss,validation_items,correct,accuracy,train_seconds,validation_seconds";

    private const int Samples = 20;
    private readonly CliContext context;
    private readonly DiffusionTrainer trainer;
    private readonly MnistDataset data;
    private readonly string path;

    private ValidationCurve(CliContext context, DiffusionTrainer trainer, MnistDataset data, string path)
    {
        this.context = context;
        this.trainer = trainer;
        this.data = data;
        this.path = path;
        trainer.EpochCompleted += OnEpochCompleted;
    }

    /// <summary>Loads the validation items and hooks the trainer; the caller disposes the result.</summary>
    public static ValidationCurve Open(CliContext context, TrainCommand.TrainCommandSettings s, DiffusionTrainer trainer)
    {
        var data = MnistDataset.Load(s.Data.FullName, MnistSplit.Validation, new MnistDatasetOptions { Limit = s.Validate });
        string path = s.Curve?.FullName ?? Path.ChangeExtension(s.Output.FullName, null) + ".curve.csv";
        if (!File.Exists(path))
            File.WriteAllText(path, Header + "\n");
        context.Out.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Validation after every epoch: {data.Count} items ({data.Source}), N = {Samples}, float32; curve in {path}.")));
        return new ValidationCurve(context, trainer, data, path);
    }

    private void OnEpochCompleted(object? sender, TrainingProgress e)
    {
        var clock = Stopwatch.StartNew();
        using var model = trainer.CreateModel(useEma: trainer.HasEma);
        using var classifier = new BayesClassifier(model, trainer.Scheduler,
            BayesClassifierOptions.Default with { Precision = InferencePrecision.Float32, EarlyExit = null }); // as the committed curves
        var predictions = classifier.PredictBatch(data.Images, Samples);
        var labels = data.Labels.data<long>().ToArray();
        int correct = predictions.Zip(labels).Count(p => p.First.Label == p.Second);
        double seconds = clock.Elapsed.TotalSeconds;
        string row = string.Create(CultureInfo.InvariantCulture,
            $"{e.Epoch},{e.Epochs},{e.EpochMeanLoss:F6},{data.Count},{correct},{(double)correct / data.Count:F4},{e.Elapsed.TotalSeconds:F1},{seconds:F1}");
        File.AppendAllText(path, row + "\n");
        context.Out.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"epoch {e.Epoch}/{e.Epochs}: mean loss {e.EpochMeanLoss:F5}, validation {correct}/{data.Count} = {100.0 * correct / data.Count:F2}% ({seconds:F0} s)")));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        trainer.EpochCompleted -= OnEpochCompleted;
        data.Dispose();
    }
}
