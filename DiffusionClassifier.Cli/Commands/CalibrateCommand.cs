using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Cli.Reporting;
using DiffusionClassifier.Serialization;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>calibrate</c>: fits the temperature of the probabilities on held-out results of <c>evaluate --cache</c>
/// (the validation split), reports the calibration before and after, and writes it into a model file.
/// </summary>
internal static class CalibrateCommand
{
    public static Command Create(CliContext context)
    {
        var cacheArgument = new Argument<FileInfo>("cache")
        {
            Description = "Cache file of 'evaluate --cache' on held-out data (evaluate --split validation), written by this version (it stores every class's score).",
        };
        var n = CliOptions.Int("--n", "The sample count whose results to fit on.", 20, 1, "n");
        var key = new Option<string?>("--key") { Description = "The run key to fit on, when the cache holds several runs at --n (evaluate prints it).", HelpName = "key" };
        var model = CliOptions.Model();
        model.Description = "Model file to write the calibration into (with --output). Default: the built-in MNIST model.";
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write --model with the fitted calibration to this file (atomically; it may be --model itself).", HelpName = "file" };
        var diagram = new Option<FileInfo?>("--diagram") { Description = "Draw the reliability diagrams before and after (PNG).", HelpName = "file.png" };
        var bins = CliOptions.Int("--bins", "Bins of the expected calibration error and the diagram.", CalibrationMetrics.DefaultBins, 1, "count");
        var temperature = new Option<double?>("--temperature")
        {
            Description = "Do not fit: report (and draw) the probabilities at this temperature, e.g. a model's fitted one on the test set.",
            HelpName = "T",
        };
        temperature.Validators.Add(r =>
        {
            if (OptionValues.TryGetValue(r, out double? t) && t is double v && !(double.IsFinite(v) && v >= ProbabilityCalibration.MinTemperature && v <= ProbabilityCalibration.MaxTemperature))
                r.AddError($"--temperature must be a finite number in [{ProbabilityCalibration.MinTemperature}, {ProbabilityCalibration.MaxTemperature}] but is {v}.");
        });
        var command = new Command("calibrate",
            "Fit the temperature T of the probabilities, softmax(-scores / T), to held-out evaluation results by maximum likelihood; " +
            "report accuracy, ECE and NLL before (T = 1, the paper's posterior) and after; optionally store T in a model file. Labels never change.");
        command.Arguments.Add(cacheArgument);
        foreach (var option in new Option[] { n, key, model, output, diagram, bins, temperature })
            command.Options.Add(option);
        command.SetAction(parseResult => Run(context, parseResult.GetValue(cacheArgument)!, parseResult.GetValue(n), parseResult.GetValue(key),
            parseResult.GetValue(model), parseResult.GetValue(output), parseResult.GetValue(diagram), parseResult.GetValue(bins), parseResult.GetValue(temperature)));
        return command;
    }

    private static int Run(CliContext context, FileInfo cacheFile, int n, string? key, FileInfo? modelFile, FileInfo? output, FileInfo? diagram, int bins,
        double? given)
    {
        if (given is not null && output is not null)
            throw new CliException("--temperature reports at a given temperature; --output stores a fitted one: give one of them.");
        var runs = EvaluationCache.ReadResults(cacheFile.FullName).Where(r => r.N == n).GroupBy(r => r.Key).ToList();
        if (key is not null)
            runs = runs.Where(g => g.Key == key).ToList();
        if (runs.Count == 0)
            throw new CliException($"'{cacheFile.FullName}' holds no results at --n {n}{(key is null ? "" : $" with run key {key}")}.");
        if (runs.Count > 1)
            throw new CliException($"'{cacheFile.FullName}' holds {runs.Count} runs at --n {n} (run keys {string.Join(", ", runs.Select(g => g.Key))}); choose one with --key.");
        var results = runs[0].OrderBy(r => r.Index).ToList();
        var missing = results.Where(r => r.Scores is null).ToList();
        if (missing.Count > 0)
            throw new CliException($"{missing.Count} of the {results.Count} results in '{cacheFile.FullName}' (e.g. item {missing[0].Index}) have no class scores: the cache was written by an older version. Evaluate again into a new cache file.");
        int classes = results[0].Scores!.Length;
        if (results.Any(r => r.Scores!.Length != classes || r.Label < 0 || r.Label >= classes))
            throw new CliException($"'{cacheFile.FullName}' mixes results with different class counts or labels outside the scores.");

        var items = results.Select(r => (r.Scores!, r.Label)).ToList();
        // With every item right by a margin the likelihood keeps rising as T falls: there is no finite optimum.
        if (given is null && results.All(r => r.Correct))
            throw new CliException($"All {results.Count} results at N = {n} are correct, so the likelihood has no finite maximum: fit on more held-out items (some must be misclassified).");
        double temperature = given ?? CalibrationMetrics.FitTemperature(items);
        var top = results.Select(r => (r.Scores!, r.Label, r.Predicted)).ToList();
        var before = CalibrationMetrics.TopOne(top, 1);
        var after = CalibrationMetrics.TopOne(top, temperature);
        string fittedOn = string.Create(CultureInfo.InvariantCulture,
            $"{cacheFile.Name}, run {runs[0].Key}, items {results[0].Index}..{results[^1].Index}");

        var table = new Table().Border(TableBorder.Rounded).AddColumn("probabilities").AddColumn(new TableColumn("T").RightAligned())
            .AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn(new TableColumn("mean confidence").RightAligned())
            .AddColumn(new TableColumn(I($"ECE ({bins} bins)")).RightAligned()).AddColumn(new TableColumn("NLL").RightAligned());
        void Row(string name, double t, (double Confidence, bool Correct)[] outcomes) => table.AddRow(Markup.Escape(name), I($"{t:G4}"),
            I($"{100.0 * outcomes.Count(o => o.Correct) / outcomes.Length:F2}%"), I($"{outcomes.Average(o => o.Confidence):F4}"),
            I($"{CalibrationMetrics.ExpectedCalibrationError(outcomes, bins):F4}"), I($"{CalibrationMetrics.NegativeLogLikelihood(items, t):F4}"));
        Row("paper (T = 1)", 1, before);
        Row(given is null ? "fitted" : "given (--temperature)", temperature, after);
        context.Out.MarkupLine(Markup.Escape(I($"{(given is null ? "Fitted on" : "Scored")} {results.Count} results at N = {n}: {fittedOn}.")));
        context.Out.Write(table);

        if (diagram is not null)
        {
            Charts.ReliabilityDiagram(diagram.FullName,
            [
                (I($"paper posterior (T = 1), N = {n}: ECE {CalibrationMetrics.ExpectedCalibrationError(before, bins):F3}"), CalibrationMetrics.Bins(before, bins)),
                (I($"{(given is null ? "fitted" : "calibrated")} (T = {temperature:G3}), N = {n}: ECE {CalibrationMetrics.ExpectedCalibrationError(after, bins):F3}"), CalibrationMetrics.Bins(after, bins)),
            ]);
            context.Out.MarkupLine(Markup.Escape($"Wrote {diagram.FullName}"));
        }
        if (output is not null)
        {
            var calibration = new ProbabilityCalibration(temperature, n, results.Count, fittedOn);
            using var loaded = ModelSource.Load(modelFile);
            var metadata = loaded.Metadata.Where(p => !ModelFile.IsReserved(p.Key)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            ModelFile.Save(output.FullName, loaded.Model, loaded.Scheduler, metadata, loaded.ExtraTensors, calibration);
            context.Out.MarkupLine(Markup.Escape($"Wrote {output.FullName} with {calibration}."));
        }
        return ExitCodes.Success;
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
