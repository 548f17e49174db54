using System.Globalization;
using DiffusionClassifier.Cli.Evaluation;
using Spectre.Console;

namespace DiffusionClassifier.Cli.Reporting;

/// <summary>The tables the commands print.</summary>
internal static class Tables
{
    /// <summary>One row per N: accuracy, wall time, throughput and cost.</summary>
    public static Table Summary(IEnumerable<EvaluationSummary> summaries)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("N").RightAligned())
            .AddColumn(new TableColumn("images").RightAligned())
            .AddColumn(new TableColumn("accuracy").RightAligned())
            .AddColumn(new TableColumn("wall time").RightAligned())
            .AddColumn(new TableColumn("images/s").RightAligned())
            .AddColumn(new TableColumn("median s/image").RightAligned())
            .AddColumn(new TableColumn("evaluations/image").RightAligned())
            .AddColumn(new TableColumn("full-net equiv./image").RightAligned())
            .AddColumn(new TableColumn("ECE (T)").RightAligned())
            .AddColumn(new TableColumn("NLL").RightAligned())
            .AddColumn(new TableColumn("ECE (paper)").RightAligned());
        foreach (var s in summaries)
        {
            table.AddRow(
                I($"{s.N}"), I($"{s.Images}"), I($"{100 * s.Accuracy:F2}% ({s.Correct}/{s.Images})"), Time(s.Seconds),
                I($"{s.ImagesPerSecond:F2}"), I($"{s.MedianSecondsPerImage:F3}"), I($"{s.EvaluationsPerImage:F1}"), I($"{s.FullEquivalentsPerImage:F1}"),
                s.ExpectedCalibrationError is double ece ? I($"{ece:F4} ({s.Temperature:G3})") : "-",
                s.NegativeLogLikelihood is double nll ? I($"{nll:F4}") : "-",
                I($"{s.PaperExpectedCalibrationError:F4}"));
        }
        return table;
    }

    /// <summary>One row per run compared with the baseline (the first row is the baseline against itself).</summary>
    public static Table Comparison(IEnumerable<RunComparison> rows)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("run"))
            .AddColumn(new TableColumn("items").RightAligned())
            .AddColumn(new TableColumn("accuracy").RightAligned())
            .AddColumn(new TableColumn("baseline").RightAligned())
            .AddColumn(new TableColumn("difference").RightAligned())
            .AddColumn(new TableColumn("right only: run / baseline").RightAligned())
            .AddColumn(new TableColumn("p (McNemar)").RightAligned())
            .AddColumn(new TableColumn("same label").RightAligned())
            .AddColumn(new TableColumn("evals/image").RightAligned())
            .AddColumn(new TableColumn("full equiv./image").RightAligned())
            .AddColumn(new TableColumn("median s/image").RightAligned());
        foreach (var r in rows)
        {
            if (r.Items == 0)
            {
                table.AddRow(Markup.Escape(r.Name), "0", "-", "-", "-", "-", "-", "-", "-", "-", "-");
                continue;
            }
            table.AddRow(
                Markup.Escape(r.Name), I($"{r.Items}"), I($"{100 * r.Accuracy:F2}%"), I($"{100 * r.BaselineAccuracy:F2}%"),
                I($"{100 * (r.Accuracy - r.BaselineAccuracy):+0.00;-0.00;0.00} pt"), I($"{r.OnlyThisCorrect} / {r.OnlyBaselineCorrect}"),
                I($"{r.McNemarP:G3}"), I($"{100.0 * r.SameLabel / r.Items:F1}%"), I($"{r.EvaluationsPerImage:F1}"),
                I($"{r.FullEquivalentsPerImage:F1}"), I($"{r.MedianSecondsPerImage:F3}"));
        }
        return table;
    }

    /// <summary>Rows: true class; columns: predicted class; the diagonal highlighted.</summary>
    public static Table Confusion(int[][] confusion, string title)
    {
        int k = confusion.Length;
        var table = new Table().Border(TableBorder.Simple).Title(Markup.Escape(title))
            .AddColumn(new TableColumn("true \\ pred"));
        for (int c = 0; c < k; c++)
            table.AddColumn(new TableColumn(I($"{c}")).RightAligned());
        table.AddColumn(new TableColumn("recall").RightAligned());
        for (int t = 0; t < k; t++)
        {
            int total = confusion[t].Sum();
            var cells = new List<string> { I($"{t}") };
            for (int p = 0; p < k; p++)
            {
                int v = confusion[t][p];
                cells.Add(v == 0 ? "[grey]·[/]" : t == p ? I($"[green]{v}[/]") : I($"[red]{v}[/]"));
            }
            cells.Add(total == 0 ? "-" : I($"{100.0 * confusion[t][t] / total:F1}%"));
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    /// <summary>Seconds as "12.3 s" or "4 min 05 s" or "1 h 02 min".</summary>
    public static string Time(double seconds)
    {
        var t = TimeSpan.FromSeconds(seconds);
        if (seconds < 60) return I($"{seconds:F1} s");
        if (seconds < 3600) return I($"{(int)t.TotalMinutes} min {t.Seconds:00} s");
        return I($"{(int)t.TotalHours} h {t.Minutes:00} min");
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
