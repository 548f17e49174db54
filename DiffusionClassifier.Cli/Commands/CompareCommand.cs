using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Evaluation;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Cli.Reporting;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>compare</c>: paired comparison of evaluation runs stored in <c>evaluate --cache</c> files, each against the
/// first run, on the items both classified. Small accuracy differences on a few thousand digits are within noise;
/// McNemar's test on the discordant items says which are not.
/// </summary>
internal static class CompareCommand
{
    public static Command Create(CliContext context)
    {
        var caches = new Argument<FileInfo[]>("caches")
        {
            Description = "Cache files written by 'evaluate --cache'. Every (run key, N) in them is one run; the first run is the baseline.",
            Arity = ArgumentArity.OneOrMore,
        };
        var ns = CliOptions.IntList("--n", "Only runs with these N (comma-separated, e.g. 20,50).", 1, "list");
        var offset = CliOptions.Int("--offset", "Only items from this index on.", 0, 0, "index");
        var limit = CliOptions.Limit("Only this many items from --offset on (default: all).");
        var command = new Command("compare",
            "Compare evaluation runs from 'evaluate --cache' files with the first one, item by item: accuracy on the common items, " +
            "items only one run got right, McNemar's exact p-value, label agreement and cost.");
        command.Arguments.Add(caches);
        command.Options.Add(ns);
        command.Options.Add(offset);
        command.Options.Add(limit);
        command.SetAction(parseResult => Run(context, parseResult.GetValue(caches)!, parseResult.GetValue(ns),
            parseResult.GetValue(offset), parseResult.GetValue(limit)));
        return command;
    }

    private static int Run(CliContext context, FileInfo[] files, int[]? ns, int offset, int? limit)
    {
        // System.CommandLine gives an array option that was not passed (and has no default) an empty array.
        if (ns is { Length: 0 })
            ns = null;
        var runs = new List<(string Name, List<ImageResult> Results)>();
        foreach (var file in files)
        {
            var groups = EvaluationCache.ReadResults(file.FullName)
                .Where(r => (ns is null || ns.Contains(r.N)) && r.Index >= offset && (limit is null || r.Index - offset < limit))
                .GroupBy(r => (r.N, r.Key))
                .OrderBy(g => g.Key.N).ThenBy(g => g.Key.Key, StringComparer.Ordinal).ToList();
            string stem = Path.GetFileNameWithoutExtension(file.Name);
            foreach (var g in groups)
            {
                // The run key only when the file holds several runs at this N (e.g. other options in one cache).
                bool ambiguous = groups.Count(other => other.Key.N == g.Key.N) > 1;
                runs.Add((string.Create(CultureInfo.InvariantCulture, $"{stem} N={g.Key.N}{(ambiguous ? " " + g.Key.Key : "")}"), g.ToList()));
            }
        }
        if (runs.Count == 0)
            throw new CliException(ns is null
                ? "The cache files hold no results for the selected items."
                : $"The cache files hold no results for --n {string.Join(",", ns)} and the selected items.");

        var baseline = runs[0];
        var rows = runs.Select(r => RunComparison.Compare(r.Name, baseline.Results, r.Results)).ToList();
        context.Out.WriteLine($"Baseline: {baseline.Name} ({baseline.Results.Count} items). Each run is compared on the items both classified.");
        context.Out.Write(Tables.Comparison(rows));
        return ExitCodes.Success;
    }
}
