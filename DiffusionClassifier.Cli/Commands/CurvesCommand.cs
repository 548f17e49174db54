using System.CommandLine;
using System.Globalization;
using DiffusionClassifier.Cli.Infrastructure;
using DiffusionClassifier.Cli.Reporting;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Commands;

/// <summary>
/// <c>curves</c>: the learning curves of one or more <c>train --validate</c> runs (their CSV files) as a table and a
/// PNG chart, so that runs with different settings can be compared epoch by epoch.
/// </summary>
internal static class CurvesCommand
{
    public static Command Create(CliContext context)
    {
        var files = new Argument<FileInfo[]>("curves")
        {
            Description = "Curve files written by 'train --validate' (model.curve.csv by default); each is one run, named after its file or folder.",
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Draw validation accuracy and mean training loss per epoch (PNG).", HelpName = "file.png" };
        var command = new Command("curves", "Show the learning curves of 'train --validate' runs: a table per run and, with --output, a chart of validation accuracy and training loss per epoch.");
        command.Arguments.Add(files);
        command.Options.Add(output);
        command.SetAction(parseResult => Run(context, parseResult.GetValue(files)!, parseResult.GetValue(output)));
        return command;
    }

    /// <summary>One epoch of a curve file.</summary>
    internal sealed record Point(int Epoch, int Epochs, double MeanLoss, int Items, int Correct, double Accuracy, double TrainSeconds, double ValidationSeconds);

    /// <summary>Reads a curve file (header <see cref="ValidationCurve.Header"/>); a later row for an epoch replaces an earlier one (a resumed run).</summary>
    /// <exception cref="CliException">The file is not a curve file; the message names the line.</exception>
    internal static IReadOnlyList<Point> Read(FileInfo file)
    {
        if (!file.Exists)
            throw new CliException($"Curve file '{file.FullName}' does not exist.");
        var lines = File.ReadAllLines(file.FullName);
        if (lines.Length == 0 || lines[0].Trim() != ValidationCurve.Header)
            throw new CliException($"'{file.FullName}' is not a learning curve: its first line must be '{ValidationCurve.Header}'.");
        var points = new SortedDictionary<int, Point>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            var f = lines[i].Split(',');
            var c = CultureInfo.InvariantCulture;
            if (f.Length != 8 || !int.TryParse(f[0], c, out int epoch) || !int.TryParse(f[1], c, out int epochs)
                || !double.TryParse(f[2], c, out double loss) || !int.TryParse(f[3], c, out int items) || !int.TryParse(f[4], c, out int correct)
                || !double.TryParse(f[5], c, out double accuracy) || !double.TryParse(f[6], c, out double train) || !double.TryParse(f[7], c, out double validation))
                throw new CliException($"'{file.FullName}', line {i + 1}, is not a curve row: '{lines[i]}'.");
            points[epoch] = new Point(epoch, epochs, loss, items, correct, accuracy, train, validation);
        }
        return points.Values.ToList();
    }

    private static int Run(CliContext context, FileInfo[] files, FileInfo? output)
    {
        var runs = files.Select(f => (Name: RunName(f, files), Points: Read(f))).ToList();
        foreach (var (name, points) in runs)
        {
            var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(name))
                .AddColumn(new TableColumn("epoch").RightAligned()).AddColumn(new TableColumn("mean loss").RightAligned())
                .AddColumn(new TableColumn("validation").RightAligned()).AddColumn(new TableColumn("accuracy").RightAligned());
            foreach (var p in points)
                table.AddRow(I($"{p.Epoch}/{p.Epochs}"), I($"{p.MeanLoss:F5}"), I($"{p.Correct}/{p.Items}"), I($"{100 * p.Accuracy:F2}%"));
            context.Out.Write(table);
        }
        if (output is not null)
        {
            Charts.Lines(output.FullName, "epoch",
            [
                ("validation accuracy (%), N = 20", runs.Select(r => (r.Name, (IReadOnlyList<(double, double)>)r.Points.Select(p => ((double)p.Epoch, 100 * p.Accuracy)).ToList())).ToList()),
                ("mean training loss", runs.Select(r => (r.Name, (IReadOnlyList<(double, double)>)r.Points.Select(p => ((double)p.Epoch, p.MeanLoss)).ToList())).ToList()),
            ]);
            context.Out.MarkupLine(Markup.Escape($"Wrote {output.FullName}"));
        }
        return ExitCodes.Success;
    }

    /// <summary>The file name, or its folder's name when every file has the same name (models/a/model.curve.csv, models/b/...).</summary>
    private static string RunName(FileInfo file, FileInfo[] all) =>
        all.Select(f => f.Name).Distinct().Count() == all.Length ? Path.GetFileNameWithoutExtension(file.Name) : file.Directory?.Name ?? file.Name;

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
