using TorchSharp;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Cli.Reporting;
using DiffusionClassifier.Imaging;
using DiffusionClassifier.Pretrained;
using DiffusionClassifier.Sampling;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// The main command (also <c>demo</c>): the built-in model classifies the built-in MNIST test digits with the default
/// estimator, then draws guided samples of every digit into a PNG grid.
/// </summary>
/// <remarks>
/// Sized to finish in a few minutes on two cores: the defaults spend 300 digits x 55.8 full-network equivalents
/// (N = 20, default estimator) plus 20 samples x 400 steps x 1.62 (trunk + conditional and unconditional heads),
/// about 30,000 forward passes of the built-in network.
/// </remarks>
internal static class DemoCommand
{
    /// <summary>Digits classified by default.</summary>
    public const int DefaultCount = 300;

    /// <summary>Monte Carlo samples per class by default.</summary>
    public const int DefaultN = 20;

    /// <summary>Samples per digit in the grid by default.</summary>
    public const int DefaultPerDigit = 2;

    private const string Description =
        "Demo: classify built-in MNIST test digits with the built-in model and the default estimator (accuracy, confusion matrix, " +
        "images/s, evaluations per image), then write a PNG grid of guided samples of every digit.";

    /// <summary>Makes <paramref name="root"/> run the demo when no command is given.</summary>
    public static void Configure(RootCommand root, CliContext context) => AddTo(root, context);

    /// <summary>The <c>demo</c> command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("demo", Description);
        AddTo(command, context);
        return command;
    }

    private static void AddTo(Command command, CliContext context)
    {
        var output = new Option<FileInfo>("--output", "-o") { Description = "PNG grid of the guided samples (one column per digit).", DefaultValueFactory = _ => new FileInfo("samples.png"), HelpName = "file" };
        var count = CliOptions.Int("--count", $"How many of the {PretrainedModels.MnistTestDigitCount} built-in test digits to classify (0 skips classification).", DefaultCount, 0, "digits");
        var n = CliOptions.Int("--n", "Monte Carlo samples per class.", DefaultN, 1, "samples");
        var perDigit = CliOptions.Int("--per-digit", "Guided samples per digit in the grid (0 skips sampling).", DefaultPerDigit, 0, "count");
        var guidance = CliOptions.Double("--guidance", "Classifier-free guidance weight of the samples.", GuidedSamplerOptions.DefaultGuidanceWeight, 0, "w", "-w");
        var seed = new Option<long>("--seed") { Description = "Seed of the classifier's and the sampler's noise.", DefaultValueFactory = _ => 0, HelpName = "seed" };
        var model = CliOptions.Model();
        var device = DeviceChoice.Create();
        foreach (var option in new Option[] { output, count, n, perDigit, guidance, seed, model, device })
            command.Options.Add(option);
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(Run(context, new Settings(
            parseResult.GetValue(output)!, parseResult.GetValue(count), parseResult.GetValue(n), parseResult.GetValue(perDigit),
            parseResult.GetValue(guidance), parseResult.GetValue(seed), parseResult.GetValue(model), parseResult.GetValue(device)!), cancellationToken)));
    }

    private sealed record Settings(FileInfo Output, int Count, int N, int PerDigit, double Guidance, long Seed, FileInfo? Model, string Device);

    private static int Run(CliContext context, Settings s, CancellationToken cancellationToken)
    {
        if (s.Count > PretrainedModels.MnistTestDigitCount)
            throw new CliException($"--count {s.Count}: there are only {PretrainedModels.MnistTestDigitCount} built-in digits (use 'evaluate --data' for the full test set).");
        var total = Stopwatch.StartNew();
        var device = DeviceChoice.Resolve(s.Device);
        using var loaded = ModelSource.Load(s.Model);
        loaded.Model.to(device);
        using var digits = PretrainedModels.LoadMnistTestDigits();
        var config = loaded.Model.Config;
        long parameters = loaded.Model.parameters().Sum(p => p.numel());
        context.Out.MarkupLine(I($"[bold]DiffusionClassifier demo[/]: {Markup.Escape(ModelSource.Describe(s.Model))} (ConditionalUNet F = {config.Features}, {parameters:N0} parameters, DDPM T = {loaded.Scheduler.NumTrainTimesteps}) on {device}."));

        if (s.Count > 0)
        {
            var options = BayesClassifierOptions.Default with { Seed = s.Seed, Device = device.ToString() };
            using var classifier = new BayesClassifier(loaded.Model, loaded.Scheduler, options, context.LoggerFactory.CreateLogger<BayesClassifier>(),
                calibration: loaded.Calibration);
            context.Out.MarkupLine(Markup.Escape(I($"Classifying the first {s.Count} MNIST test digits (LeCun, Cortes, Burges; CC BY-SA 3.0), N = {s.N}, default estimator: {ClassifierOptionsBinder.Describe(classifier)}.")));
            context.Out.MarkupLine(Markup.Escape($"Precision: {classifier.PrecisionDecision}."));
            context.Out.MarkupLine(Markup.Escape(ClassifierOptionsBinder.DescribeTemperature(classifier) + "."));
            var labels = digits.Labels.data<long>().ToArray();
            var results = new List<(ImageResult, bool)>();
            ConsoleProgress.Run(context.Out, progressContext =>
            {
                var task = progressContext.AddTask(I($"Classifying {s.Count} digits"), maxValue: s.Count);
                BatchClassification.Run(classifier, digits.Images, Enumerable.Range(0, s.Count).ToArray(), s.N, BatchClassification.DefaultBatchSize,
                    (indices, predictions, seconds) =>
                    {
                        for (int j = 0; j < indices.Count; j++)
                            results.Add((ImageResult.From("demo", indices[j], s.N, (int)labels[indices[j]], predictions[j], seconds / indices.Count), false));
                        task.Increment(indices.Count);
                    }, cancellationToken);
            });
            var summary = EvaluationSummary.From(s.N, config.Classes, results, classifier.Temperature);
            context.Out.Write(Tables.Summary([summary]));
            context.Out.Write(Tables.Confusion(summary.Confusion, I($"Confusion matrix (rows: true digit, columns: predicted), N = {s.N}")));
            context.Out.MarkupLine(I($"Accuracy [bold]{100 * summary.Accuracy:F1}%[/] on {summary.Images} digits, {summary.ImagesPerSecond:F1} images/s, {summary.EvaluationsPerImage:F1} network evaluations per image ({summary.FullEquivalentsPerImage:F1} full-network equivalents; the reference estimator spends {s.N * config.Classes})."));
        }

        if (s.PerDigit > 0)
        {
            using var sampler = new GuidedSampler(loaded.Model, loaded.Scheduler,
                new GuidedSamplerOptions { GuidanceWeight = s.Guidance, Seed = s.Seed }, context.LoggerFactory.CreateLogger<GuidedSampler>());
            SamplingResult? samples = null;
            ConsoleProgress.Run(context.Out, progressContext =>
            {
                var task = progressContext.AddTask(I($"Sampling {s.PerDigit} of every digit (w = {s.Guidance})"), maxValue: loaded.Scheduler.NumTrainTimesteps);
                // Digit-minor order (0..9, 0..9, ...): a grid with one column per digit.
                var labels = Enumerable.Range(0, s.PerDigit * config.Classes).Select(i => i % config.Classes).ToArray();
                samples = sampler.Sample(labels, new InlineProgress<SamplingProgress>(p => task.Value = p.Step), cancellationToken);
            });
            using (samples)
            {
                ImageIO.SaveGrid(samples!.Images, config.Classes, s.Output.FullName, scale: 3);
                context.Out.MarkupLine(Markup.Escape(I($"Wrote {s.Output.FullName}: guided samples, one column per digit 0..{config.Classes - 1} ({samples.Elapsed.TotalSeconds:F1} s).")));
            }
        }
        context.Out.MarkupLine(Markup.Escape(I($"Done in {total.Elapsed.TotalSeconds:F1} s.")));
        return ExitCodes.Success;
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
