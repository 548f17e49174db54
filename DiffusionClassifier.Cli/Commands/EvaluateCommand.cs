using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DiffusionClassifier.Classification;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Cli.Reporting;
using DiffusionClassifier.Data;
using DiffusionClassifier.IO;
using DiffusionClassifier.Serialization;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>evaluate</c>: accuracy, time and cost of the classifier on a labelled dataset, for several N in one run, with a
/// resumable per-image cache.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var data = new DataSource();
        var ns = CliOptions.IntList("--n", "Monte Carlo samples per class; several comma-separated values are evaluated one after the other (e.g. 20,50,100).",
            1, "list", [20]);
        var binder = new ClassifierOptionsBinder();
        var limit = CliOptions.Limit("Evaluate at most this many items (default: all from --offset on).");
        var offset = CliOptions.Int("--offset", "Index of the first item to evaluate.", 0, 0, "index");
        var batch = CliOptions.Int("--batch", "Images per classifier call, and per cache flush.", BatchClassification.DefaultBatchSize, 1, "count");
        var cache = new Option<string?>("--cache")
        {
            Description = "Resumable cache (JSON lines, one per item, N and options): results found there are reused, new ones appended and flushed after every batch. Rerun the same command to continue an interrupted evaluation. Several comma-separated files are all read (e.g. the caches of every shard, to build the merged table); new results go to the first. '{shard}' in a path becomes the --shard index.",
            HelpName = "file[,file...]",
        };
        var shard = new Option<string?>("--shard")
        {
            Description = "Evaluate only this share of the items, INDEX/COUNT (0-based; items at positions p with p mod COUNT = INDEX). INDEX 'env' reads JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array). See docs/scale-out.md.",
            HelpName = "index/count",
        };
        var sampleErrors = new Option<FileInfo?>("--sample-errors")
        {
            Description = "Append every computed item's per-sample losses to this file (JSON lines: index, label, n, timesteps in draw order, and per sample the loss of each class, null where a class did not get the sample), to analyse estimators offline. Items reused from the cache are not written.",
            HelpName = "file",
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results (table, confusion matrices, settings) as JSON.", HelpName = "file" };
        var csv = new Option<FileInfo?>("--csv") { Description = "Also write the table as CSV.", HelpName = "file" };

        var command = new Command("evaluate",
            "Classify a labelled dataset and report accuracy, wall time, images/s and network evaluations per image for each N, plus a confusion matrix.");
        command.Options.Add(model);
        data.AddTo(command);
        command.Options.Add(ns);
        binder.AddTo(command);
        foreach (var option in new Option[] { limit, offset, batch, cache, shard, sampleErrors, json, csv })
            command.Options.Add(option);
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(Run(context, parseResult, new Settings(
            parseResult.GetValue(model), data, parseResult.GetValue(ns)!, binder.Bind(parseResult), parseResult.GetValue(limit),
            parseResult.GetValue(offset), parseResult.GetValue(batch), parseResult.GetValue(cache), parseResult.GetValue(shard),
            parseResult.GetValue(sampleErrors), parseResult.GetValue(json), parseResult.GetValue(csv)), cancellationToken)));
        return command;
    }

    private sealed record Settings(FileInfo? Model, DataSource Data, int[] Ns, BayesClassifierOptions Options, int? Limit, int Offset,
        int Batch, string? Cache, string? Shard, FileInfo? SampleErrors, FileInfo? Json, FileInfo? Csv);

    /// <summary>The items to evaluate: the first Count from --offset on, then this shard's share of them.</summary>
    private sealed record ItemSelection(int Count, Evaluation.Shard? Shard, int[] Indices);

    /// <summary>What every N of one <see cref="Run"/> call shares: the classifier, the items and the caches.</summary>
    private sealed record EvaluationRun(BayesClassifier Classifier, MnistDataset Dataset, long[] Labels, int[] Indices, int Classes, string Key,
        EvaluationCache? Cache, Dictionary<(int Index, int N), ImageResult> OtherCaches, int Batch, FileInfo? SampleErrors);

    private static int Run(CliContext context, ParseResult parseResult, Settings s, CancellationToken cancellationToken)
    {
        using var loaded = ModelSource.Load(s.Model);
        var (dataset, dataDescription) = s.Data.Load(parseResult);
        using var _ = dataset;
        int classes = loaded.Model.Config.Classes;
        if (dataset.Classes > classes)
            throw new CliException($"The data has {dataset.Classes} classes but the model only {classes}.");
        var items = SelectItems(s, dataset);
        var labels = dataset.Labels.data<long>().ToArray();

        using var classifier = new BayesClassifier(loaded.Model, loaded.Scheduler, s.Options, context.LoggerFactory.CreateLogger<BayesClassifier>(),
            calibration: loaded.Calibration);
        classifier.RecordSampleErrors = s.SampleErrors is not null;
        string optionsText = ClassifierOptionsBinder.Describe(classifier);
        string key = EvaluationCache.ComputeKey(ModelSource.Fingerprint(loaded), DataSource.Fingerprint(dataset), optionsText);
        WriteHeader(context, s, loaded, classifier, dataDescription, items, optionsText, key);

        var cachePaths = CachePaths(s.Cache, items.Shard);
        using var cache = cachePaths.Length == 0 ? null : EvaluationCache.Open(cachePaths[0]);
        if (cache is { DroppedTornBytes: > 0 })
            context.Error.MarkupLine(Markup.Escape($"warning: dropped an incomplete last line ({cache.DroppedTornBytes} bytes) from {cache.Path}."));
        var run = new EvaluationRun(classifier, dataset, labels, items.Indices, classes, key, cache, ReadOtherCaches(cachePaths, key),
            s.Batch, s.SampleErrors);

        var summaries = new List<EvaluationSummary>();
        foreach (int n in s.Ns.Distinct())
            summaries.Add(EvaluateAt(context, run, n, cancellationToken));

        WriteSummary(context, summaries, cache, cachePaths);
        if (s.Json is not null)
            WriteJson(context, s.Json, s, dataDescription, items, optionsText, key, summaries);
        if (s.Csv is not null)
            WriteCsv(context, s.Csv, summaries);
        return ExitCodes.Success;
    }

    /// <summary>Applies --offset, --limit and --shard.</summary>
    private static ItemSelection SelectItems(Settings s, MnistDataset dataset)
    {
        if (s.Offset >= dataset.Count)
            throw new CliException($"--offset {s.Offset} is past the end of the data ({dataset.Count} items).");
        int count = Math.Min(s.Limit ?? int.MaxValue, dataset.Count - s.Offset);
        var indices = Enumerable.Range(s.Offset, count).ToArray();
        var shard = s.Shard is null ? null : Evaluation.Shard.Parse(s.Shard, Environment.GetEnvironmentVariable);
        if (shard is not null)
            indices = shard.Select(indices);
        return new ItemSelection(count, shard, indices);
    }

    /// <summary>Prints what is evaluated: model, items, classifier options and run key, precision and temperature.</summary>
    private static void WriteHeader(CliContext context, Settings s, LoadedModel loaded, BayesClassifier classifier, string dataDescription,
        ItemSelection items, string optionsText, string key)
    {
        var config = loaded.Model.Config;
        context.Out.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Model: {ModelSource.Describe(s.Model)} (F = {config.Features}, T = {loaded.Scheduler.NumTrainTimesteps})")));
        context.Out.MarkupLine(Markup.Escape($"Data: {dataDescription}, items {s.Offset}..{s.Offset + items.Count - 1}" +
            (items.Shard is null ? "" : string.Create(CultureInfo.InvariantCulture, $", {items.Shard}: {items.Indices.Length} of them"))));
        context.Out.MarkupLine(Markup.Escape($"Options: {optionsText}; run key {key}"));
        context.Out.MarkupLine(Markup.Escape($"Precision: {classifier.PrecisionDecision}"));
        context.Out.MarkupLine(Markup.Escape(ClassifierOptionsBinder.DescribeTemperature(classifier)));
    }

    /// <summary>The --cache files, '{shard}' replaced; new results go to the first.</summary>
    private static string[] CachePaths(string? cache, Evaluation.Shard? shard) =>
        (cache ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(p => shard?.CachePath(p) ?? p).ToArray();

    /// <summary>This run's results in the cache files after the first (e.g. other shards' caches), which are only read.</summary>
    private static Dictionary<(int Index, int N), ImageResult> ReadOtherCaches(string[] cachePaths, string key)
    {
        var merged = new Dictionary<(int Index, int N), ImageResult>();
        foreach (var path in cachePaths.Skip(1))
            foreach (var r in EvaluationCache.ReadResults(path).Where(r => r.Key == key))
                merged[(r.Index, r.N)] = r;
        return merged;
    }

    /// <summary>Evaluates every selected item at <paramref name="n"/>: cached results are reused, the others computed.</summary>
    private static EvaluationSummary EvaluateAt(CliContext context, EvaluationRun run, int n, CancellationToken cancellationToken)
    {
        var results = CachedResults(run, n);
        var missing = run.Indices.Where(i => !results.ContainsKey(i)).ToArray();
        if (missing.Length > 0)
            ComputeMissing(context, run, n, missing, results, cancellationToken);
        return EvaluationSummary.From(n, run.Classes, run.Indices.Select(i => results[i]), run.Classifier.Temperature);
    }

    /// <summary>The results at <paramref name="n"/> found in the cache, or else in the other cache files.</summary>
    private static Dictionary<int, (ImageResult Result, bool FromCache)> CachedResults(EvaluationRun run, int n)
    {
        var results = new Dictionary<int, (ImageResult Result, bool FromCache)>();
        foreach (int i in run.Indices)
        {
            if (run.Cache is not null && run.Cache.TryGet(run.Key, i, n, out var hit))
                results[i] = (hit, true);
            else if (run.OtherCaches.TryGetValue((i, n), out var other))
                results[i] = (other, true);
        }
        return results;
    }

    /// <summary>
    /// Classifies <paramref name="missing"/> at <paramref name="n"/> with a progress bar, adding each batch to
    /// <paramref name="results"/>, the cache and --sample-errors as it completes (so an interruption loses at most a batch).
    /// </summary>
    private static void ComputeMissing(CliContext context, EvaluationRun run, int n, int[] missing,
        Dictionary<int, (ImageResult Result, bool FromCache)> results, CancellationToken cancellationToken)
    {
        ConsoleProgress.Run(context.Out, progressContext =>
        {
            var task = progressContext.AddTask(string.Create(CultureInfo.InvariantCulture, $"N = {n}: {missing.Length} images"), maxValue: missing.Length);
            BatchClassification.Run(run.Classifier, run.Dataset.Images, missing, n, run.Batch, (batchIndices, predictions, seconds) =>
            {
                var fresh = batchIndices.Select((index, j) => ImageResult.From(run.Key, index, n, (int)run.Labels[index], predictions[j],
                    seconds / batchIndices.Count)).ToArray();
                run.Cache?.Append(fresh);
                if (run.SampleErrors is not null)
                    AppendSampleErrors(run.SampleErrors.FullName, batchIndices, run.Labels, n, predictions);
                foreach (var r in fresh)
                    results[r.Index] = (r, false);
                task.Increment(fresh.Length);
            }, cancellationToken);
        });
    }

    /// <summary>Prints the table of every N, the cache use and the confusion matrix of the last N.</summary>
    private static void WriteSummary(CliContext context, List<EvaluationSummary> summaries, EvaluationCache? cache, string[] cachePaths)
    {
        context.Out.Write(Tables.Summary(summaries));
        int reused = summaries.Sum(x => x.Cached), computed = summaries.Sum(x => x.Computed);
        if (cache is not null)
            context.Out.MarkupLine(Markup.Escape($"Cache: {reused} result(s) reused, {computed} computed ({string.Join(", ", cachePaths.Select(Path.GetFullPath))})."));
        var last = summaries[^1];
        context.Out.Write(Tables.Confusion(last.Confusion, string.Create(CultureInfo.InvariantCulture, $"Confusion matrix, N = {last.N}")));
    }

    /// <summary>Writes --json: the settings, the items and every N's summary.</summary>
    private static void WriteJson(CliContext context, FileInfo json, Settings s, string dataDescription, ItemSelection items, string optionsText,
        string key, List<EvaluationSummary> summaries)
    {
        var report = new
        {
            model = ModelSource.Describe(s.Model),
            data = dataDescription,
            offset = s.Offset,
            count = items.Count,
            shard = items.Shard?.ToString(),
            items = items.Indices.Length,
            options = optionsText,
            run_key = key,
            results = summaries,
        };
        AtomicFile.WriteAllBytes(json.FullName, JsonSerializer.SerializeToUtf8Bytes(report, new JsonSerializerOptions { WriteIndented = true }));
        context.Out.MarkupLine(Markup.Escape($"Wrote {json.FullName}"));
    }

    /// <summary>Writes --csv: one row per N.</summary>
    private static void WriteCsv(CliContext context, FileInfo csv, List<EvaluationSummary> summaries)
    {
        var text = new StringBuilder("n,images,correct,accuracy,seconds,images_per_second,median_seconds_per_image,evaluations_per_image,full_equivalents_per_image,temperature,ece,nll,paper_ece\n");
        foreach (var x in summaries)
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{x.N},{x.Images},{x.Correct},{x.Accuracy:R},{x.Seconds:R},{x.ImagesPerSecond:R},{x.MedianSecondsPerImage:R},{x.EvaluationsPerImage:R},{x.FullEquivalentsPerImage:R},{x.Temperature:R},{x.ExpectedCalibrationError:R},{x.NegativeLogLikelihood:R},{x.PaperExpectedCalibrationError:R}\n"));
        AtomicFile.WriteAllBytes(csv.FullName, Encoding.UTF8.GetBytes(text.ToString()));
        context.Out.MarkupLine(Markup.Escape($"Wrote {csv.FullName}"));
    }

    private static void AppendSampleErrors(string path, IReadOnlyList<int> indices, long[] labels, int n, IReadOnlyList<ClassPrediction> predictions)
    {
        var text = new StringBuilder();
        for (int j = 0; j < indices.Count; j++)
        {
            var p = predictions[j];
            var line = new
            {
                index = indices[j],
                label = labels[indices[j]],
                n,
                timesteps = p.Timesteps,
                errors = p.SampleErrors.Select(row => row.Select(e => double.IsNaN(e) ? (double?)null : e).ToArray()).ToArray(),
            };
            text.Append(JsonSerializer.Serialize(line)).Append('\n');
        }
        File.AppendAllText(path, text.ToString());
    }
}
